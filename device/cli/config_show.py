"""blinkpay config show: the effective config (file + environment + defaults) as TOML, the
format of the config file, ready to paste into one; --json for programs."""

from __future__ import annotations

import argparse
from typing import Any

import tomli_w

from device.cli._common import add_config_argument, config_from_args, print_json

HELP = "print the effective config (TOML; --json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print it as JSON")


def _toml_ready(values: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: an unset key (None) is left out, as in a config file."""
    return {
        key: _toml_ready(value) if isinstance(value, dict) else value
        for key, value in values.items()
        if value is not None
    }


def run(args: argparse.Namespace) -> int:
    values = config_from_args(args).model_dump(mode="json")
    if args.json:
        print_json(values)
    else:
        print("# blinkpay's effective config: the file, the environment and the defaults.")
        print("# Keys not shown are unset (no default).\n")
        print(tomli_w.dumps(_toml_ready(values)), end="")
    return 0
