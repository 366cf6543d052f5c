"""`blinkpay demo`: the whole terminal on simulated hardware, playing customer scenes."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from device.cli._common import print_json
from device.logs import setup_logging
from device.signals import event_setter, stop_on_signals

HELP = "the whole terminal on simulated hardware, with scenes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    parser.add_argument(
        "--offline", action="store_true", help="no broker even when mosquitto is installed"
    )
    parser.add_argument("--verbose", action="store_true", help="show the terminal's own logs")
    parser.add_argument(
        "--ride-only",
        action="store_true",
        help="play only the first scene, a paid ride (a quick check of an installed or "
        "emulated terminal)",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="the operator's web console, recording from the first scene and left running "
        "after the scenes (Ctrl-C stops it)",
    )
    parser.add_argument(
        "--console-listen",
        type=_listen,
        default="127.0.0.1:8080",
        help="HOST:PORT (default %(default)s)",
    )


def _listen(text: str) -> str:
    """HOST:PORT, checked before the demo runs (the console's own rule)."""
    from backend.cli_parser import listen_address

    return listen_address(text)


def _until_interrupted(url: str) -> None:
    stop = threading.Event()
    with stop_on_signals(event_setter(stop)):  # Ctrl-C is how the person stops it
        stop.wait()


def run(args: argparse.Namespace) -> int:
    setup_logging("INFO" if args.verbose else "ERROR", "text")
    logging.getLogger("blinkpay").setLevel(logging.INFO if args.verbose else logging.ERROR)
    from device.demo.scenes import run_demo

    def narrate(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    console = None
    if args.console:
        from device.demo.console import DemoConsole

        console = DemoConsole(
            lambda line: print(line, flush=True), _until_interrupted, args.console_listen
        )
    report = run_demo(
        narrate, use_broker=not args.offline, console=console, ride_only=args.ride_only
    )
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
