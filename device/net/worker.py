"""One background thread for the network services' slow work (store writes, snapshot
assembly, outbox ticks), so paho's network thread only validates and enqueues."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, name: str = "net-worker", max_jobs: int = 1000) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=max_jobs)
        self._timers: list[tuple[float, Callable[[], None], list[float]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._name = name
        self.dropped = 0

    def every(self, interval_s: float, job: Callable[[], None]) -> None:
        """Run `job` every `interval_s` seconds on the worker thread (register before start)."""
        self._timers.append((interval_s, job, [0.0]))

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue a job; False when the queue is full (the caller counts the refusal)."""
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._stop.set()
            self._jobs.put(lambda: None)  # wake the thread
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            wait = 0.25
            for interval, job, last in self._timers:
                if now - last[0] >= interval:
                    last[0] = now
                    self._safely(job)
                wait = min(wait, max(0.0, interval - (time.monotonic() - last[0])))
            try:
                job = self._jobs.get(timeout=max(wait, 0.01))
            except queue.Empty:
                continue
            self._safely(job)

    @staticmethod
    def _safely(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:
            log.exception("network job failed")
