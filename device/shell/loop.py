"""The terminal's main loop: one thread owns the session; everything else posts events.

Capture, inference, the keypad and MQTT run in their own threads and hand their results
over through one bounded queue, so the session state machine never needs a lock. The loop
is also where liveness is proven to systemd: a WATCHDOG=1 ping is sent from here and
nowhere else, so a loop stuck in a handler stops pinging and systemd restarts the service.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from device.clock import Clock
from device.notify import Notifier

log = logging.getLogger(__name__)

# Test hook (see tests/app/test_watchdog.py): while this file exists the loop body blocks,
# exactly as a handler stuck on I/O would, so one can watch the pings stop.
HANG_FILE_ENV = "BLINKPAY_DEBUG_HANG_FILE"

EventHandler = Callable[[object, float], None]
TickHandler = Callable[[float], None]


class MainLoop:
    def __init__(
        self,
        clock: Clock,
        notifier: Notifier,
        *,
        tick_s: float = 0.05,
        max_events: int = 512,
        hang_file: Path | None = None,
    ) -> None:
        self.clock = clock
        self.notifier = notifier
        self.tick_s = tick_s
        self._events: queue.Queue[object] = queue.Queue(maxsize=max_events)
        self._stop = threading.Event()
        self.stop_reason = ""
        self.dropped_events = 0
        self.iterations = 0
        self.watchdog_pings = 0
        self.handler_errors = 0
        env_hang = os.environ.get(HANG_FILE_ENV)
        self._hang_file = hang_file or (Path(env_hang) if env_hang else None)

    # -- any thread ------------------------------------------------------------------------
    def post(self, event: object) -> bool:
        """Hand an event to the main loop; never blocks. A full queue drops and counts it
        (the loop is behind; a face observation a moment later replaces it anyway)."""
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self.dropped_events += 1
            if self.dropped_events in (1, 10, 100) or self.dropped_events % 1000 == 0:
                log.warning(
                    "main loop behind: event dropped",
                    extra={"event": "queue_full", "dropped": self.dropped_events},
                )
            return False
        return True

    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()
            # wake the loop if it is waiting for an event
            with contextlib.suppress(queue.Full):
                self._events.put_nowait(_WAKE)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the main thread -------------------------------------------------------------------
    def run(self, handle: EventHandler, tick: TickHandler) -> None:
        """Until request_stop(): events to `handle`, `tick` every tick_s, watchdog pings."""
        interval = self.notifier.watchdog_interval_s
        next_ping = self.clock.monotonic()
        next_tick = self.clock.monotonic()
        while not self._stop.is_set():
            now = self.clock.monotonic()
            wait = max(0.0, min(next_tick, next_ping if interval else next_tick) - now)
            try:
                event = self._events.get(timeout=wait)
            except queue.Empty:
                event = None
            if event is not None and event is not _WAKE:
                self._safely(handle, event, self.clock.monotonic())
                # drain what queued up meanwhile, bounded so ticks and pings still happen
                for _ in range(64):
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        break
                    if event is not _WAKE:
                        self._safely(handle, event, self.clock.monotonic())
            now = self.clock.monotonic()
            if now >= next_tick:
                self._safely(tick, now)
                next_tick = now + self.tick_s
            self._hang_if_asked()
            self.iterations += 1
            if interval and self.clock.monotonic() >= next_ping:
                self.notifier.watchdog()
                self.watchdog_pings += 1
                next_ping = self.clock.monotonic() + interval

    def _safely(self, handler: Callable[..., None], *args: object) -> None:
        """A failing handler is logged and counted; the loop (and the watchdog) go on."""
        try:
            handler(*args)
        except Exception:
            self.handler_errors += 1
            log.exception(
                "main loop handler failed",
                extra={"event": "handler_error", "errors": self.handler_errors},
            )

    def _hang_if_asked(self) -> None:
        if self._hang_file is None or not self._hang_file.exists():
            return
        log.warning("debug hang: main loop blocked", extra={"event": "debug_hang"})
        while self._hang_file.exists() and not self._stop.is_set():
            threading.Event().wait(0.05)
        log.warning("debug hang: main loop resumed", extra={"event": "debug_hang_end"})


_WAKE = object()
