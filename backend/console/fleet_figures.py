"""The fleet page's per-terminal figures from the host's store: today's transactions by
status, the people each terminal turned away today, and its last transaction.

They read the indexes of migration 0008: the last transaction is one seek per registered
terminal, today's counts read today's index entries only. At a city's
volume that is still seconds by the evening, so the figures are kept between reads. They
are counted again when a transaction arrived or was voided since (some terminal's last
transaction moved), an event was recorded, or the day changed; and looked at no sooner
than MIN_AGE_S after the last look, nor sooner than COST_FACTOR times what the last count
took (counting then uses at most about a fifth of the time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.console.history import History
from backend.console.store import ConsoleStore

MIN_AGE_S = 1.0
COST_FACTOR = 4.0

TODAY_SQL = (
    "SELECT d.device_id, t.status, COUNT(*) AS n FROM devices d"
    " JOIN transactions t ON t.device_id = d.device_id AND t.received_at >= ?"
    " GROUP BY d.device_id, t.status"
)
LAST_SQL = (
    "SELECT t.device_id, t.amount, t.status, t.received_at FROM devices d"
    " JOIN transactions t ON t.tx_id = (SELECT x.tx_id FROM transactions x"
    " WHERE x.device_id = d.device_id ORDER BY x.received_at DESC LIMIT 1)"
)


@dataclass(frozen=True)
class Figures:
    today: dict[str, dict[str, int]] = field(default_factory=dict)  # device -> status -> n
    refusals: dict[str, int] = field(default_factory=dict)  # device -> people turned away
    last: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> its last tx
    seconds: float = 0.0  # what computing them took


class FleetFigures:
    def __init__(
        self, store: ConsoleStore, history: History, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store, self.history = store, history
        self._clock = clock
        self._lock = threading.Lock()  # one count at a time; readers meanwhile wait for it
        self._key: tuple[float, float | None, int | None] | None = None
        self._figures = Figures()
        self._at = -float("inf")

    def get(self, midnight: float) -> Figures:
        """The figures of the UTC day starting at `midnight` (epoch seconds)."""
        with self._lock:
            now = self._clock()
            fresh = now - self._at < max(MIN_AGE_S, COST_FACTOR * self._figures.seconds)
            if fresh and self._key is not None and self._key[0] == midnight:
                return self._figures
            self._at = now
            started = time.perf_counter()
            last = {r["device_id"]: r for r in self.store.query(LAST_SQL)}
            # a new transaction, or a void (it moves its row's received_at), is some
            # terminal's last one now; a new event has the highest id
            newest = max((float(r["received_at"]) for r in last.values()), default=None)
            event = self.store.one("SELECT MAX(id) AS id FROM terminal_events")
            key = (midnight, newest, None if event is None else event["id"])
            if key != self._key:
                today: dict[str, dict[str, int]] = {}
                for r in self.store.query(TODAY_SQL, (midnight,)):
                    today.setdefault(r["device_id"], {})[r["status"]] = int(r["n"])
                refusals = self.history.refusals_since(midnight)
                self._figures = Figures(today, refusals, last, time.perf_counter() - started)
                self._key = key
            return self._figures
