"""A small progress bar on stderr for long evaluation runs."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._tty = self.stream.isatty()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        # a live bar on a terminal; a line per 10% in logs
        if self._tty and now - self._last < 0.2 and self.done < self.total:
            return
        if not self._tty and self.done * 10 // self.total == (self.done - n) * 10 // self.total:
            return
        self._last = now
        filled = 30 * self.done // self.total
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        line = (
            f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}"
            f" {rate:.1f}/s eta {eta:.0f}s"
        )
        self.stream.write(("\r" if self._tty else "") + line + ("" if self._tty else "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
