"""Paged, searched lists and their CSV exports."""

from __future__ import annotations

import csv
import io

from backend.console.lists import search, to_csv
from backend.console.store import ConsoleStore
from backend.db import HostDb


def test_audit_pages_newest_first_and_searches(host_db_url: str) -> None:
    store = ConsoleStore(HostDb(host_db_url))
    for i in range(7):
        store.audit("ada" if i % 2 else "olga", "command", f"gate-{i}")
    first, more = search(store, "audit", "", 1, size=3)
    assert [r["target"] for r in first] == ["gate-6", "gate-5", "gate-4"] and more
    last, more = search(store, "audit", "", 3, size=3)
    assert [r["target"] for r in last] == ["gate-0"] and not more
    found, _ = search(store, "audit", "olga")
    assert len(found) == 4


def test_csv_quotes_formulas_and_keeps_numbers() -> None:
    text = to_csv(
        [{"a": '=HYPERLINK("x")', "b": -250, "c": None, "d": 'say "hi", ok'}],
        ["a", "b", "c", "d"],
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["a", "b", "c", "d"], ['\'=HYPERLINK("x")', "-250", "", 'say "hi", ok']]
