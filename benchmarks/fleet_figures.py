"""What the fleet page's per-terminal figures cost on a big host database: N registered
terminals, M transactions over `days` days (the last day is today) and as many refusal
events, then FleetFigures counted cold and looked at again. Prints figures as JSON.

    python -m benchmarks.fleet_figures --terminals 1000 --transactions 1000000 --days 7
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from backend.console.fleet_figures import FleetFigures
from backend.console.history import History
from backend.console.settings import ConsoleSettings
from backend.console.store import ConsoleStore
from backend.db import HostDb


def fill(db: HostDb, terminals: int, transactions: int, days: float, now: float) -> None:
    step = days * 86400 / transactions
    with db.transaction() as conn:
        for i in range(terminals):
            conn.execute("INSERT INTO devices (device_id) VALUES (?)", (f"gate-{i:05d}",))
        for start in range(0, transactions, 10_000):
            rows = [
                (
                    f"tx-{i}",
                    f"gate-{i % terminals:05d}",
                    "approved" if i % 20 else "declined",
                    now - days * 86400 + i * step,
                )
                for i in range(start, min(start + 10_000, transactions))
            ]
            for row in rows:
                conn.execute(
                    "INSERT INTO transactions (tx_id, device_id, token, amount, status, result,"
                    " body, received_at, host_id) VALUES (?, ?, 'tok', 250, ?, 'recorded', '{}',"
                    " ?, 'h')",
                    row,
                )
                if row[2] == "declined":
                    conn.execute(
                        "INSERT INTO terminal_events (device_id, ts, type, outcome, body)"
                        " VALUES (?, ?, 'unknown_face', NULL, '{}')",
                        (row[1], row[3]),
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--db", help="a PostgreSQL URL (default: a SQLite file made here)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = HostDb(args.db or str(Path(folder) / "host.db"))
        now = time.time()
        started = time.perf_counter()
        fill(db, args.terminals, args.transactions, args.days, now)
        filled_s = time.perf_counter() - started
        store = ConsoleStore(db)
        figures = FleetFigures(store, History(store, ConsoleSettings()), clock=lambda: 0.0)
        midnight = now - now % 86400
        started = time.perf_counter()
        cold = figures.get(midnight)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        figures.get(midnight)
        cached_s = time.perf_counter() - started
        today = sum(sum(by_status.values()) for by_status in cold.today.values())
        db.close()
    print(
        json.dumps(
            {
                "terminals": args.terminals,
                "transactions": args.transactions,
                "transactions_today": today,
                "fill_s": round(filled_s, 1),
                "count_ms": round(cold_s * 1000, 1),
                "cached_ms": round(cached_s * 1000, 3),
                "next_count_no_sooner_than_s": max(1.0, 4 * cold.seconds),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
