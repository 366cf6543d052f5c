"""blinkpay config check: validate a config file and say exactly what is wrong."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from device.config import ConfigError, load_config
from device.provisioning import key_problems

HELP = "validate a config file and the key files it names"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="config file (TOML)")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.path)
        problems = key_problems(config)
        if problems:  # `run` would refuse to start on any of these
            raise ConfigError(problems, str(args.path))
    except ConfigError as exc:
        print(f"{exc.source}: invalid", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"{args.path}: ok (settings and key files)")
    return 0
