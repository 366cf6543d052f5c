"""blinkpay db rekey: a new data key, every template re-encrypted in one transaction.

Stop the terminal service first: it holds the old key in memory.
"""

from __future__ import annotations

import argparse

from device.cli._common import add_config_argument, config_from_args, print_json
from device.store.terminal_store import open_existing_store

HELP = "re-encrypt every template with a new key"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    store = open_existing_store(config.store, config.device.data_dir)
    try:
        old = store.shard.sealer.key_id
        count = store.rekey()
        new = store.shard.sealer.key_id
    finally:
        store.close()
    result = {
        "templates": count,
        "old_key_id": old,
        "key_id": new,
        "key_file": str(store.key_paths.data_key),
    }
    if args.json:
        print_json(result)
    else:
        print(
            f"re-encrypted {count} templates; {result['key_file']} now holds key {new} (was {old})"
        )
    return 0
