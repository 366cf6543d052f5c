"""Refused inbound messages: counted by reason (telemetry's `rejected`) and logged at a
bounded rate, so a hostile or broken publisher cannot fill the journal (one WARNING line
per refusal was 5 MB per 21k messages): the first refusal of a window is logged in full,
the rest are counted and summarised in one line when the window ends."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("device.net.client")

SUMMARY_EVERY_S = 60.0


class RejectCounter:
    """Thread-safe counters of refused inbound messages by reason (telemetry's `rejected`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def __getitem__(self, reason: str) -> int:
        with self._lock:
            return self._counts[reason]


class RefusalLog:
    """At most one detailed line per window, then one summary line of what was held back."""

    def __init__(
        self, every_s: float = SUMMARY_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._held: Counter[str] = Counter()
        self.lines = 0  # lines written (tests, telemetry)

    def refused(self, message: str, topic: str, reason: str, detail: str) -> None:
        now = self._clock()
        with self._lock:
            summary = self._flush_if_due(now)
            first = self._window_start is None
            if first:
                self._window_start = now
            else:
                self._held[reason] += 1
        if summary:
            self._write("refused %d more inbound messages in %.0f s: %s", *summary)
        if first:
            self._write("refused %s on %s: %s: %s", message, topic, reason, detail[:200])

    def tick(self) -> None:
        """Write the summary of a window that has ended even when no refusal follows it."""
        with self._lock:
            summary = self._flush_if_due(self._clock())
        if summary:
            self._write("refused %d more inbound messages in %.0f s: %s", *summary)

    def _flush_if_due(self, now: float) -> tuple[int, float, str] | None:
        if self._window_start is None or now - self._window_start < self._every_s:
            return None
        held, self._held = self._held, Counter()
        elapsed = now - self._window_start
        self._window_start = None
        if not held:
            return None
        counts = ", ".join(f"{reason} {n}" for reason, n in held.most_common())
        return sum(held.values()), elapsed, counts

    def _write(self, fmt: str, *args: object) -> None:
        self.lines += 1
        log.warning(fmt, *args, extra={"event": "refused"})
