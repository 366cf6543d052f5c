"""blinkpay db verify: integrity check, every record decrypts, the index matches the table."""

from __future__ import annotations

import argparse

from device.cli._common import add_config_argument, config_from_args, print_json
from device.selftest.storage import verify_store
from device.store.terminal_store import open_existing_store

HELP = "integrity, decryption and index check"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print {ok, checks: [...]} as JSON")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    store = open_existing_store(config.store, config.device.data_dir)
    try:
        checks = verify_store(store)
    finally:
        store.close()
    ok = all(check.ok for check in checks)
    if args.json:
        print_json({"ok": ok, "checks": [check.to_dict() for check in checks]})
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
    return 0 if ok else 1
