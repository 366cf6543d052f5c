"""`blinkpay mdb-sim`: a simulated vending machine controller plays scripted scenarios
against the terminal's MDB cashless device over a pseudo-terminal, and measures how fast
the device answers (the MDB budget is 5 ms from the VMC's last byte to the first byte of
the answer)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from device.cli._common import print_json

HELP = "a simulated vending machine (MDB VMC) against the cashless device, timed"
TRANSPORTS = ("mdb-uart", "mdb-hat")
DESCRIPTIONS = {
    "mdb-uart": "raw 9-bit UART: this process answers the bus (pty, stuffed mode bit)",
    "mdb-hat": "Qibixx MDB Pi HAT: its firmware answers the bus (emulated HAT on a pty)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport",
        choices=(*TRANSPORTS, "all"),
        default="all",
        help="which serial transport to run (default: both)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=None,
        help="run only this scenario (repeatable; see --list)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--polls",
        type=int,
        default=1000,
        help="POLLs to time after the scenarios (default 1000; 0 to skip)",
    )
    parser.add_argument(
        "--max-price", type=int, default=5000, help="the reader's per-transaction limit (cents)"
    )
    parser.add_argument(
        "--cpu", type=int, default=None, help="mdb-uart: pin the reader's bus thread to this core"
    )
    parser.add_argument(
        "--realtime",
        type=int,
        default=None,
        metavar="PRIORITY",
        help="mdb-uart: run the bus thread SCHED_FIFO at this priority (1-99, needs root)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    from device.errors import BlinkpayError
    from device.vending.mdb.config import ReaderSetup
    from device.vending.scenarios import scenarios

    setup = ReaderSetup(max_price=args.max_price)
    names = [name for name, _, _ in scenarios(setup.max_price)]
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.scenario or ()) - set(names))
    if unknown:
        raise BlinkpayError(f"unknown scenario(s): {', '.join(unknown)} (see --list)")
    transports = TRANSPORTS if args.transport == "all" else (args.transport,)
    tuning = {"cpu": args.cpu, "realtime_priority": args.realtime}
    if args.realtime is not None:  # the simulated VMC too, or its own wake-ups are measured
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.realtime))
        except (OSError, ValueError) as exc:
            raise BlinkpayError(f"--realtime {args.realtime}: {exc} (needs CAP_SYS_NICE)") from exc
    results = [_run_transport(t, setup, args.scenario, args.polls, tuning) for t in transports]
    host = {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    if args.json:
        print_json({"ok": all(r["ok"] for r in results), "host": host, "transports": results})
    else:
        print(f"host: {host['cpus']} CPUs, load average {host['load_average']} (at the end)")
        for result in results:
            _print(result)
    return 0 if all(r["ok"] for r in results) else 1


def _opener(transport: str, tuning: dict[str, int | None]) -> Callable[[Any], Any]:
    if transport == "mdb-hat":
        from device.vending.hat_sim import open_hat_link

        return open_hat_link
    from device.vending.vmc_sim import open_uart_link

    return lambda setup: open_uart_link(setup, **tuning)


def _run_transport(
    transport: str,
    setup: Any,
    only: list[str] | None,
    polls: int,
    tuning: dict[str, int | None],
) -> dict[str, Any]:
    from device.vending.scenarios import run_scenario, scenarios, start_up
    from device.vending.vmc_sim import bench_polls_apart, distribution

    link = _opener(transport, tuning)(setup)
    try:
        results = [
            run_scenario(link, script, name, expected)
            for name, script, expected in scenarios(setup.max_price, transport)
            if not only or name in only
        ]
        bench = None
        if polls > 0 and transport == "mdb-uart":
            start_up(link)
            priority = tuning["realtime_priority"] or 0
            bench = bench_polls_apart(link, polls, priority=priority).to_dict()
        out: dict[str, Any] = {
            "transport": transport,
            "description": DESCRIPTIONS[transport],
            "ok": all(r.ok for r in results),
            "scenarios": [r.to_dict() for r in results],
            "response_ms": distribution(link.vmc.latencies_ms).to_dict(),
            "poll_bench_ms": bench,
            "counted": link.reader.stats(),
        }
        turnaround = getattr(link.vmc, "turnaround_ms", None)
        if turnaround is not None:
            out["host_turnaround_ms"] = distribution(turnaround).to_dict()
        return out
    finally:
        link.close()


def _print(result: dict[str, Any]) -> None:
    print(f"mdb-sim {result['transport']}: {result['description']}")
    for s in result["scenarios"]:
        print(f"  {'ok  ' if s['ok'] else 'FAIL'} {s['scenario']}")
        if not s["ok"]:
            print(f"       expected: {s['expected']}\n       actual:   {s['actual']}")
        if s["stats"]:
            counted = ", ".join(f"{k} {v}" for k, v in sorted(s["stats"].items()))
            print(f"       counted: {counted}")
    if result["transport"] == "mdb-hat":
        print("  bus response time: the HAT firmware's (not this process's)")
        _print_distribution(
            "host turnaround (status line -> answer line)", result["host_turnaround_ms"]
        )
        return
    _print_distribution("response time, scenario answers (VMC in-process)", result["response_ms"])
    if result["poll_bench_ms"]:
        _print_distribution(
            "response time, idle POLL -> ACK (VMC in its own process)", result["poll_bench_ms"]
        )


def _print_distribution(label: str, d: dict[str, Any]) -> None:
    if not d["count"]:
        print(f"  {label}: nothing measured")
        return
    print(
        f"  {label}: n={d['count']} p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, "
        f"max {d['max_ms']} ms; over the {d['budget_ms']:g} ms budget: {d['over_budget']} "
        f"(of which unanswered: {d['missed']})"
    )
