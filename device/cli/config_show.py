"""blinkpay config show: the effective config (file + environment + defaults) as JSON."""

from __future__ import annotations

import argparse

from device.cli._common import add_config_argument, config_from_args, print_json

HELP = "print the effective config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    print_json(config_from_args(args).model_dump(mode="json"))
    return 0
