"""blinkpay db stats: counts by status, shard and embedder version, file size."""

from __future__ import annotations

import argparse

from device.cli._common import add_config_argument, config_from_args, print_json
from device.store.stats import store_stats
from device.store.terminal_store import open_existing_store

HELP = "counts, versions and file size"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")


def _lines(data: dict[str, object], prefix: str = "") -> list[str]:
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.extend(_lines(value, f"{prefix}{key}."))
        else:
            lines.append(f"{prefix}{key}: {value}")
    return lines


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    store = open_existing_store(config.store, config.device.data_dir)
    try:
        stats = store_stats(store)
    finally:
        store.close()
    if args.json:
        print_json(stats)
    else:
        print("\n".join(_lines(stats)))
    return 0
