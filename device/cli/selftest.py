"""blinkpay selftest: run every subsystem's checks (device/selftest/) and report them."""

from __future__ import annotations

import argparse

from device.cli._common import add_config_argument, config_from_args, print_json
from device.clock import SystemClock
from device.selftest.suite import collect_checks

HELP = "check camera, GPIO, models, database, broker"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--sim", action="store_true", help="check simulated hardware")
    parser.add_argument("--json", action="store_true", help="print {ok, checks: [...]} as JSON")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    checks = collect_checks(config, sim=args.sim, clock=SystemClock())
    ok = all(check.ok for check in checks)
    if args.json:
        print_json({"ok": ok, "checks": [check.to_dict() for check in checks]})
    else:
        width = max((len(check.name) for check in checks), default=0)
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
        print(f"\nselftest: {'all ok' if ok else 'FAILED'} ({len(checks)} checks)")
    return 0 if ok else 1
