"""How the console's telemetry history holds up: N terminals reporting every `interval`
seconds for `hours`, written one report at a time as the console does, then the per-minute
aggregation, a day's raw series and a month's minute series read back. Prints figures.

    python -m benchmarks.console_history --terminals 200 --interval 10 --hours 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from backend.console.history import History
from backend.console.settings import ConsoleSettings
from backend.console.store import ConsoleStore
from backend.db import HostDb


def report(device_id: str, ts: float, i: int) -> dict[str, object]:
    return {
        "device_id": device_id,
        "ts": ts,
        "fps": 10.0 + (i % 7) / 10,
        "cpu_temp_c": 50.0,
        "latency_ms": {"embed": {"p50": 20.0, "p95": 30.0}, "detect": {"p50": 9, "p95": 14}},
        "decisions": {"approved": i // 20, "declined": i // 200},
        "liveness_rejections": i // 50,
        "outbox_depth": i % 3,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--terminals", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        history = History(ConsoleStore(HostDb(Path(folder) / "host.db")), ConsoleSettings())
        start = time.time() - args.hours * 3600
        reports = int(args.hours * 3600 / args.interval)
        began = time.perf_counter()
        for i in range(reports):
            for t in range(args.terminals):
                history.record_telemetry(report(f"gate-{t:04d}", start + i * args.interval, i))
        written = args.terminals * reports
        write_s = time.perf_counter() - began
        began = time.perf_counter()
        done = history.maintain()
        maintain_s = time.perf_counter() - began
        now = time.time()
        began = time.perf_counter()
        raw = history.series("gate-0000", now - 3600, now, now)
        raw_ms = (time.perf_counter() - began) * 1000
        began = time.perf_counter()
        month = history.series("gate-0000", now - 30 * 86400, now, now)
        month_ms = (time.perf_counter() - began) * 1000
        print(
            json.dumps(
                {
                    "terminals": args.terminals,
                    "reports_written": written,
                    "writes_per_s": round(written / write_s),
                    "needed_writes_per_s": round(args.terminals / args.interval, 1),
                    "aggregate_s": round(maintain_s, 3),
                    "minutes_aggregated": done["minutes"],
                    "hour_raw_points": len(raw["points"]),
                    "hour_raw_read_ms": round(raw_ms, 1),
                    "month_minute_points": len(month["points"]),
                    "month_minute_read_ms": round(month_ms, 1),
                    "db_mb": round((Path(folder) / "host.db").stat().st_size / 1e6, 1),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
