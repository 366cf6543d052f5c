"""The MDB cashless device on a raw 9-bit UART: this process answers the bus itself.

One thread reads words, hands each to the pure CashlessDevice and writes its answer at
once: MDB gives the peripheral 5 ms from the VMC's last byte to its first (t-response,
Section 2.5), so nothing else runs between reading and answering. The terminal's calls
only queue answers for the next POLL, under the same lock.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

from device.clock import Clock, SystemClock
from device.vending.mdb.cashless import CashlessDevice
from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.frames import Word
from device.vending.mdb.state import Output
from device.vending.port import VendingEvent

log = logging.getLogger("blinkpay.vending")

READ_TIMEOUT_S = 0.005  # the loop also ticks (timeouts) at least this often


class WordPort(Protocol):
    def read_words(self, timeout: float) -> list[Word]: ...
    def write_words(self, words: list[Word]) -> None: ...
    def close(self) -> None: ...


class MdbUartController:
    name = "mdb-uart"

    def __init__(
        self,
        open_port: Callable[[], WordPort],
        setup: ReaderSetup | None = None,
        clock: Clock | None = None,
        cpu: int | None = None,
        realtime_priority: int | None = None,
    ) -> None:
        """cpu: pin the bus thread to this core (one kept free with isolcpus=);
        realtime_priority: run it SCHED_FIFO at this priority (1-99; needs CAP_SYS_NICE)."""
        self._open_port = open_port
        self.cpu, self.realtime_priority = cpu, realtime_priority
        self.device = CashlessDevice(setup)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._events: list[VendingEvent] = []
        self._port: WordPort | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._silent = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._port = self._open_port()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mdb-uart", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._port is not None:
            self._port.close()
            self._port = None

    def silence(self, silent: bool) -> None:
        """Simulation hook: a hung reader that hears the bus and never answers."""
        self._silent = silent

    # ------------------------------------------------------------ the bus loop

    def _run(self) -> None:
        port = self._port
        assert port is not None
        self._tune_thread()
        while not self._stop.is_set():
            try:
                words = port.read_words(READ_TIMEOUT_S)
            except OSError as exc:  # the port went away (pty closed, USB unplugged)
                log.warning("mdb-uart: read failed: %s", exc)
                return
            for word in words:
                with self._lock:
                    out = self.device.receive(word, self._clock.monotonic())
                self._emit(port, out)
            with self._lock:
                out = self.device.tick(self._clock.monotonic())
            self._emit(port, out)

    def _tune_thread(self) -> None:
        """Affinity and scheduling for this thread only (pid 0 = the calling thread)."""
        try:
            if self.cpu is not None:
                os.sched_setaffinity(0, {self.cpu})
            if self.realtime_priority is not None:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))
        except (OSError, ValueError) as exc:  # no such core, or no CAP_SYS_NICE
            log.warning("mdb-uart: cannot tune the bus thread: %s", exc)
            with self._lock:
                self.device.stats["thread_tuning_failed"] += 1

    def _emit(self, port: WordPort, out: Output) -> None:
        if out.send and not self._silent:
            try:
                port.write_words(out.send)
            except OSError as exc:  # counted; the VMC will retry or reset us
                log.warning("mdb-uart: write failed: %s", exc)
                with self._lock:
                    self.device.stats["write_failed"] += 1
        if out.events:
            with self._lock:
                self._events += out.events

    # ------------------------------------------------------------ the port

    def events(self) -> list[VendingEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def begin_session(self, funds: int) -> bool:
        with self._lock:
            return self.device.begin_session(funds, self._clock.monotonic())

    def approve_vend(self, amount: int) -> bool:
        with self._lock:
            return self.device.approve_vend(amount, self._clock.monotonic())

    def deny_vend(self) -> bool:
        with self._lock:
            return self.device.deny_vend(self._clock.monotonic())

    def end_session(self) -> bool:
        with self._lock:
            return self.device.end_session(self._clock.monotonic())

    def cancel(self) -> bool:
        with self._lock:
            return self.device.cancel(self._clock.monotonic())

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.device.stats)
