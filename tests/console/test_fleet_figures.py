"""The fleet page's per-terminal figures (today's transactions, people turned away, the last
transaction): exact, counted again only when something changed, never more often than the
count's own cost allows; the queries read the indexes of migration 0008, not every row."""

from __future__ import annotations

import pytest

from backend.console import fleet_figures
from backend.console.fleet_figures import FleetFigures
from backend.console.history import History
from backend.console.settings import ConsoleSettings
from backend.console.store import ConsoleStore
from backend.db import HostDb

MIDNIGHT = 1_800_000_000.0 - 1_800_000_000.0 % 86400


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _tx(store: ConsoleStore, tx_id: str, device_id: str, status: str, at: float) -> None:
    store.execute(
        "INSERT INTO transactions (tx_id, device_id, token, amount, status, result, body,"
        " received_at, host_id) VALUES (?, ?, 'tok', 250, ?, 'recorded', '{}', ?, 'h')",
        (tx_id, device_id, status, at),
    )


@pytest.fixture
def parts(host_db_url: str):  # type: ignore[no-untyped-def]
    store = ConsoleStore(HostDb(host_db_url))
    for device_id in ("gate-1", "gate-2"):
        store.execute("INSERT INTO devices (device_id) VALUES (?)", (device_id,))
    clock = Clock()
    history = History(store, ConsoleSettings())
    yield store, history, clock, FleetFigures(store, history, clock)
    store.db.close()


def test_the_figures_are_exact_and_follow_new_rows(parts) -> None:  # type: ignore[no-untyped-def]
    store, history, clock, figures = parts
    _tx(store, "t0", "gate-1", "approved", MIDNIGHT - 10)  # yesterday
    _tx(store, "t1", "gate-1", "approved", MIDNIGHT + 10)
    _tx(store, "t2", "gate-1", "declined", MIDNIGHT + 20)
    _tx(store, "t3", "gate-2", "approved", MIDNIGHT + 30)
    history.record_event({"device_id": "gate-2", "ts": MIDNIGHT + 5, "type": "unknown_face"})
    history.record_event({"device_id": "gate-2", "ts": MIDNIGHT - 5, "type": "unknown_face"})
    first = figures.get(MIDNIGHT)
    assert first.today == {"gate-1": {"approved": 1, "declined": 1}, "gate-2": {"approved": 1}}
    assert first.refusals == {"gate-2": 1}
    assert {d: r["status"] for d, r in first.last.items()} == {
        "gate-1": "declined",
        "gate-2": "approved",
    }

    _tx(store, "t4", "gate-2", "approved", MIDNIGHT + 40)
    assert figures.get(MIDNIGHT) is first  # looked at again only after MIN_AGE_S
    clock.now += fleet_figures.MIN_AGE_S
    second = figures.get(MIDNIGHT)
    assert second.today["gate-2"] == {"approved": 2}
    assert second.last["gate-2"]["received_at"] == MIDNIGHT + 40

    clock.now += fleet_figures.MIN_AGE_S
    assert figures.get(MIDNIGHT) is second  # nothing changed: not counted again

    # a void moves its row's received_at: the count sees it
    store.execute(
        "UPDATE transactions SET status = 'voided', received_at = ? WHERE tx_id = 't1'",
        (MIDNIGHT + 50,),
    )
    history.record_event({"device_id": "gate-1", "ts": MIDNIGHT + 55, "type": "face_swapped"})
    clock.now += fleet_figures.MIN_AGE_S
    third = figures.get(MIDNIGHT)
    assert third.today["gate-1"] == {"declined": 1, "voided": 1}
    assert third.refusals == {"gate-1": 1, "gate-2": 1}
    assert figures.get(MIDNIGHT + 86400).today == {}  # the next day starts at nothing


def test_a_slow_count_is_repeated_less_often(parts) -> None:  # type: ignore[no-untyped-def]
    store, _, clock, figures = parts
    _tx(store, "t1", "gate-1", "approved", MIDNIGHT + 10)
    figures.get(MIDNIGHT)
    slow = 3.0  # as if the count had taken 3 s (a city's evening)
    figures._figures = fleet_figures.Figures(
        figures._figures.today, figures._figures.refusals, figures._figures.last, slow
    )
    _tx(store, "t2", "gate-1", "approved", MIDNIGHT + 20)
    clock.now += slow * fleet_figures.COST_FACTOR - 0.5
    assert figures.get(MIDNIGHT).today["gate-1"] == {"approved": 1}
    clock.now += 0.5
    assert figures.get(MIDNIGHT).today["gate-1"] == {"approved": 2}


def test_the_queries_use_the_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SQLite's plans: one seek per terminal, today's entries of the covering index; none
    scans the transactions table."""
    db = HostDb(str(tmp_path / "host.db"))
    try:
        with db.transaction() as conn:
            plans = [
                " | ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
                for sql, args in (
                    (fleet_figures.TODAY_SQL, (MIDNIGHT,)),
                    (fleet_figures.LAST_SQL, ()),
                )
            ]
    finally:
        db.close()
    assert "COVERING INDEX transactions_by_device (device_id=? AND received_at>?)" in plans[0]
    assert "INDEX transactions_by_device (device_id=?)" in plans[1]
    assert not any("SCAN t " in p or "SCAN transactions" in p for p in plans), plans
