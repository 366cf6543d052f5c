"""`blinkpay demo`: the whole terminal on simulated hardware, playing customer scenes."""

from __future__ import annotations

import argparse
import logging
import sys

from device.cli._common import print_json
from device.logs import setup_logging

HELP = "the whole terminal on simulated hardware, with scenes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    parser.add_argument(
        "--offline", action="store_true", help="no broker even when mosquitto is installed"
    )
    parser.add_argument("--verbose", action="store_true", help="show the terminal's own logs")


def run(args: argparse.Namespace) -> int:
    setup_logging("INFO" if args.verbose else "ERROR", "text")
    logging.getLogger("blinkpay").setLevel(logging.INFO if args.verbose else logging.ERROR)
    from device.demo.scenes import run_demo

    def narrate(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    report = run_demo(narrate, use_broker=not args.offline)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"\nSummary ({'online' if report.online else 'offline'}, {report.seconds:.1f} s)")
        width = max(len(s.title) for s in report.scenes)
        for scene in report.scenes:
            mark = "ok  " if scene.ok else "FAIL"
            print(f"  {mark} {scene.title:<{width}}  {scene.actual}")
            if not scene.ok:
                print(f"       {'':<{width}}  expected: {scene.expected}")
    if not report.ok:
        print("blinkpay demo: some scenes did not go as expected", file=sys.stderr)
    return 0 if report.ok else 1
