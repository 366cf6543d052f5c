"""blinkpay selftest: run every subsystem's checks (device/selftest/) and report them."""

from __future__ import annotations

import argparse
from pathlib import Path

from device.cli._common import add_config_argument, config_from_args, print_json
from device.clock import SystemClock
from device.hw.platform import DEVICE_TREE_MODEL
from device.selftest.check import Check
from device.selftest.suite import How, collect_checks

HELP = "check camera, GPIO, models, database, broker"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--sim", action="store_true", help="check simulated hardware")
    parser.add_argument("--json", action="store_true", help="print {ok, checks: [...]} as JSON")
    # Tests point this at a file that says "Raspberry Pi ..." to act as a Pi.
    parser.add_argument(
        "--board-model-file", type=Path, default=DEVICE_TREE_MODEL, help=argparse.SUPPRESS
    )


def summary(checks: list[Check]) -> str:
    """The last line: how many checks ran, how many failed and which."""
    failed = [check.name for check in checks if not check.ok]
    if not failed:
        return f"selftest: all ok ({len(checks)} checks)"
    return f"selftest: FAILED: {len(failed)} of {len(checks)} checks failed ({', '.join(failed)})"


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    checks = collect_checks(config, How(args.sim, SystemClock(), args.board_model_file))
    ok = all(check.ok for check in checks)
    if args.json:
        failed = sum(not check.ok for check in checks)
        print_json({"ok": ok, "failed": failed, "checks": [check.to_dict() for check in checks]})
    else:
        width = max((len(check.name) for check in checks), default=0)
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
        print(f"\n{summary(checks)}")
    return 0 if ok else 1
