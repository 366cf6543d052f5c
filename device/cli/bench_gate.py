"""`blinkpay bench gate`: a queue of customers walks through one simulated gate in real
time (device/demo/gate_bench.py): customers a minute, face in view -> relay and blink ->
relay (p50/p95), the PIN-less share, refusals, the books, and Pi 4 / Pi 5 estimates
from the measured per-stage costs (device/demo/pi_estimate.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from device.cli._common import print_json

HELP = "customers a minute through one simulated gate, blink to relay, Pi estimates"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fps", type=float, default=30.0, help="camera frame rate (15, 30)")
    ring = parser.add_mutually_exclusive_group()
    ring.add_argument("--ring", dest="ring", action="store_true", default=True,
                      help="a challenge light is fitted (default)")  # fmt: skip
    ring.add_argument("--no-ring", dest="ring", action="store_false",
                      help="no challenge light: face payments ask for the PIN")  # fmt: skip
    parser.add_argument("--customers", type=int, default=20, metavar="N", help="queue length")
    parser.add_argument("--workdir", type=Path, default=None, help="keep everything here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from device.demo.gate_bench import run_gate_bench

    if not 1 <= args.customers <= 1000:
        print("blinkpay bench gate: --customers must be 1..1000")
        return 2
    if not 5.0 <= args.fps <= 120.0:
        print("blinkpay bench gate: --fps must be 5..120")
        return 2
    report = run_gate_bench(
        fps=args.fps, ring=args.ring, customers=args.customers, workdir=args.workdir
    )
    report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print_json(report)
    else:
        _print(report)
    return 0 if report["books"]["balanced"] else 1


def _print(r: dict[str, Any]) -> None:
    ring = "with the challenge light" if r["ring"] else "without a challenge light"
    print(f"gate bench: {r['customers']} customers, {r['fps']:g} fps, {ring} "
          f"(bits {r['bit_ms']} ms)")  # fmt: skip
    print(f"  customers a minute       {r['customers_per_min']}")
    print(f"  face in view -> relay    p50 {r['face_to_relay_p50_s']} s, "
          f"p95 {r['face_to_relay_p95_s']} s")  # fmt: skip
    print(f"  blink -> relay           p50 {r['blink_to_relay_p50_s']} s, "
          f"p95 {r['blink_to_relay_p95_s']} s")  # fmt: skip
    print(f"  paid {r['paid']}, PIN-less share {r['pinless_share']}, refused {r['refused']} "
          f"{r['refusals'] or ''}")  # fmt: skip
    print(f"  books: {r['books']}")
    pi = r["pi_estimates"]
    print(f"  one frame of vision here: {pi['host_frame_ms']} ms")
    for board in ("pi4", "pi5"):
        b = pi[board]
        print(f"  {board} (x{b['factor']}): frame {b['frame_ms']} ms, "
              f"{b['processed_fps']} fps, {b['customers_per_min']}/min, "
              f"blink -> relay p95 {b['blink_to_relay_p95_s']} s")  # fmt: skip
    print(f"  load average {r['load_average']}")
