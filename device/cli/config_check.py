"""blinkpay config check: validate a config file and say exactly what is wrong."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from device.config import ConfigError, load_config

HELP = "validate a config file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="config file (TOML)")


def run(args: argparse.Namespace) -> int:
    try:
        load_config(args.path)
    except ConfigError as exc:
        print(f"{exc.source}: invalid", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"{args.path}: ok")
    return 0
