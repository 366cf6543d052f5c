"""`blinkpay bench chaos`: payment integrity against real processes under bad luck and
attack (device/chaos/): random SIGKILLs of the terminal, kills while it waits for the host,
broker outages, a host slower than the authorization timeout, a full disk, and a flood of
hostile messages; then the books: money lost, gate openings without a row, crashes.

Loopback only (a private mosquitto on a free port), bounded by the counts given. The full
run takes about 20 minutes on 2 cores; its figures are in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from device.cli._common import print_json

HELP = "payment integrity under kills, outages, a slow host, a full disk, fuzz, a hostile network"
DISK_MB = 64  # the terminal's own small filesystem for the disk-full episodes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    count = {"type": int, "metavar": "N"}
    parser.add_argument("--kills", default=80, help="random SIGKILLs of the terminal", **count)
    parser.add_argument(
        "--auth-kills", default=20, help="SIGKILLs while it waits for the host", **count
    )
    parser.add_argument("--outages", default=20, help="broker stopped and restarted", **count)
    parser.add_argument("--slow-hosts", default=10, help="host paused past the timeout", **count)
    parser.add_argument("--disk-full", default=2, help="data disk filled (root only)", **count)
    parser.add_argument("--fuzz", default=20_000, help="hostile messages published", **count)
    parser.add_argument(
        "--hostile",
        default=30,
        help="rounds of forged rows, rogue-terminal rows, foreign keys and floods",
        **count,
    )
    parser.add_argument(
        "--warmup", type=float, default=20.0, metavar="S", help="undisturbed seconds first"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the episodes")
    parser.add_argument("--workdir", type=Path, default=None, help="keep everything here")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")


def run(args: argparse.Namespace) -> int:
    from device.chaos.scenarios import Chaos, mount_tmpfs, table, unmount
    from device.chaos.world import ChaosWorld

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="blinkpay-chaos-"))
    data_dir = workdir / "device-fs"
    mounted = args.disk_full > 0 and mount_tmpfs(data_dir, DISK_MB)
    started = time.monotonic()
    world = ChaosWorld(workdir, data_dir=data_dir if mounted else None)
    chaos = Chaos(world, args.seed)
    try:
        chaos.start()
        chaos.payments(args.warmup)
        chaos.kills(args.kills)
        chaos.kills_in_authorization(args.auth_kills)
        chaos.broker_outages(args.outages)
        chaos.slow_hosts(args.slow_hosts)
        chaos.disk_full(args.disk_full)
        chaos.fuzz(args.fuzz)
        chaos.hostile(args.hostile)
        chaos.settle()
        result = table(chaos.episodes, chaos.books())
    finally:
        chaos.close()
        world.close()
        if mounted:
            unmount(data_dir)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print_json(result)
    else:
        _print_table(result)
    return 0 if result["ok"] else 1


def _print_table(result: dict[str, Any]) -> None:
    print(f"{'episode':<26}{'runs':>6}{'payments':>10}{'gates':>7}  notes")
    for episode in result["episodes"]:
        notes = episode["skipped"] or "; ".join(episode["notes"][:3])
        print(
            f"{episode['name']:<26}{episode['runs']:>6}{episode['payments']:>10}"
            f"{episode['gate_openings']:>7}  {notes}"
        )
    books = result["books"]
    print(
        f"\nrows {books['rows']} (approved {books['approved']}), charged "
        f"{books['charged_by_host']} of {books['charged_expected']} expected, holds left "
        f"{books['holds_left']}, unsynced {books['unsynced_rows']}"
    )
    print(
        f"money lost {books['money_lost']}, gate openings without a row "
        f"{books['gate_openings_without_row']} of {books['gate_openings']}, terminal crashes "
        f"{books['terminal_crashes']}, refusals counted {sum(books['refusals'].values())}"
    )
    print(f"{'OK' if result['ok'] else 'FAILED'} in {result['seconds']} s")
