"""What one terminal may cost the host: per-device rate limits on authorization requests
and PIN blocks, and a fair queue that runs authorization work round-robin across devices
with a bounded backlog and at most one job in flight per device, so a terminal flooding
PIN blocks (each one an scrypt) slows only itself (docs/security.md, "Limits")."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_TRACKED = 10_000  # devices with a bucket; the least recently used go first


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by key: `rate` per second refill, `burst` at most."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> bool:
        """True (and `cost` taken) when the key's bucket holds it; False leaves it as it was."""
        if cost <= 0:
            return True
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            self._buckets[key] = bucket
            while len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
            if bucket.tokens < cost:
                return False
            bucket.tokens -= cost
            return True


class FairQueue:
    """Jobs by key, served round-robin by `workers` threads; at most `per_key` waiting and
    one running per key."""

    def __init__(self, workers: int, per_key: int, name: str = "fair") -> None:
        self._per_key = per_key
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Callable[[], None]]] = {}
        self._ready: deque[str] = deque()  # keys with work and nothing running
        self._running: set[str] = set()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key: str, job: Callable[[], None]) -> bool:
        """False (nothing queued) when the key already has `per_key` jobs waiting."""
        with self._cond:
            if self._stopping:
                return False
            queue = self._queues.setdefault(key, deque())
            if len(queue) >= self._per_key:
                return False
            queue.append(job)
            if key not in self._running and key not in self._ready:
                self._ready.append(key)
            self._cond.notify()
            return True

    def waiting(self, key: str) -> int:
        with self._cond:
            return len(self._queues.get(key, ()))

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what is running; what waits is dropped (the terminal's request times out
        and its offline rules decide, as with any host that goes away)."""
        with self._cond:
            self._stopping = True
            self._queues.clear()
            self._ready.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _next(self) -> tuple[str, Callable[[], None]] | None:
        with self._cond:
            while not self._ready and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            key = self._ready.popleft()
            job = self._queues[key].popleft()
            self._running.add(key)
            return key, job

    def _done(self, key: str) -> None:
        with self._cond:
            self._running.discard(key)
            queue = self._queues.get(key)
            if queue:
                self._ready.append(key)  # to the back: every other key goes first
                self._cond.notify()
            elif queue is not None:
                del self._queues[key]

    def _work(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            key, job = item
            try:
                job()
            except Exception:  # one bad job must not stop the worker
                log.exception("authorization job for %s failed", key)
            finally:
                self._done(key)
