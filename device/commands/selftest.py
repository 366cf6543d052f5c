"""blinkpay selftest: run every subsystem's checks and report them (text or --json).

Each subsystem contributes a check provider: a function (config, args, clock) -> [Check].
Add a provider to CHECK_PROVIDERS to add checks; a provider that raises becomes one failed
check, so one broken subsystem never hides the others' results.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from device.clock import Clock, SystemClock
from device.commands._common import add_config_argument, config_from_args, print_json
from device.config import Config
from device.selftest import Check

HELP = "check camera, GPIO, models, database, broker"

CheckProvider = Callable[[Config, argparse.Namespace, Clock], list[Check]]


def hardware_provider(config: Config, args: argparse.Namespace, clock: Clock) -> list[Check]:
    from device.hw.checks import hardware_checks  # imported here: only what is run is loaded

    return hardware_checks(config.hardware, args.sim, clock)


# (name, provider), run in this order.
CHECK_PROVIDERS: list[tuple[str, CheckProvider]] = [
    ("hardware", hardware_provider),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--sim", action="store_true", help="check simulated hardware")
    parser.add_argument("--json", action="store_true", help="print {ok, checks: [...]} as JSON")


def collect_checks(config: Config, args: argparse.Namespace, clock: Clock) -> list[Check]:
    checks: list[Check] = []
    for name, provider in CHECK_PROVIDERS:
        try:
            checks.extend(provider(config, args, clock))
        except Exception as exc:  # reported as a failed check, never a traceback
            checks.append(Check(name, False, f"check failed to run: {type(exc).__name__}: {exc}"))
    return checks


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    checks = collect_checks(config, args, SystemClock())
    ok = all(check.ok for check in checks)
    if args.json:
        print_json({"ok": ok, "checks": [check.to_dict() for check in checks]})
    else:
        width = max((len(check.name) for check in checks), default=0)
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
        print(f"\nselftest: {'all ok' if ok else 'FAILED'} ({len(checks)} checks)")
    return 0 if ok else 1
