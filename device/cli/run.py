"""`blinkpay run`: the terminal as a service (systemd runs this; see systemd/blinkpay.service)."""

from __future__ import annotations

import argparse

from device.cli._common import add_config_argument, config_from_args
from device.logs import setup_logging
from device.paths import DEFAULT_CONFIG_PATH

HELP = "run the terminal (--sim for simulated hardware)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--sim", action="store_true", help="simulated GPIO and a synthetic camera on any host"
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    setup_logging(config.device.log_level, config.device.log_format)
    from device.app import run as run_terminal  # loads the models and the store

    path = args.config
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    return run_terminal(config, sim=args.sim, config_path=path)
