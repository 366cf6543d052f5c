"""A Qibixx MDB Pi HAT in cashless-slave mode: the HAT's firmware is the MDB cashless
device (9-bit bus, ACK timing, POLL answers); the Pi speaks its ASCII line protocol.

Followed: Qibixx's public documentation (docs.qibixx.com, "MDB Pi Hat Plus & USB",
"Cashless Slave" and "Vending Sessions Examples" pages), which shows:
  host -> HAT  C,1 / C,0 (cashless slave on/off), C,START,<funds> (offer a session),
               C,VEND,<amount> (approve the vend request), C,STOP (deny / end session);
  HAT -> host  c,STATUS,INACTIVE|DISABLED|ENABLED|IDLE, c,STATUS,VEND,<amount>,<item>,
               c,VEND,SUCCESS, c,ERR,<text>, r,ACK (the VMC polled), echoes such as c,1.
Amounts are in currency units with decimals ("1.00"). Not shown there, so inferred and
kept tolerant: a failed vend arrives as c,ERR,"VEND 3" (VEND FAILURE is VEND subcommand
03H; public client code matches on it), and VEND -> IDLE or ENABLED without
c,VEND,SUCCESS means the machine withdrew the request. The reader's MDB identity (level,
currency, scale) lives in the HAT's own configuration (C,SETCONF), not sent from here.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING

from device.clock import Clock, SystemClock
from device.vending.port import (
    ReaderDisabled,
    ReaderEnabled,
    SessionCancelled,
    SessionEnded,
    SessionStarted,
    VendCancelled,
    VendFailed,
    VendingEvent,
    VendRequested,
    VendSucceeded,
)

if TYPE_CHECKING:
    import serial

log = logging.getLogger("blinkpay.vending")

_OFF = ("OFF", "INACTIVE", "DISABLED")
_SESSION = ("IDLE", "VEND")


def money(minor: int, decimal_places: int) -> str:
    """Minor units as the HAT writes money: 150 -> "1.50" (2 decimals)."""
    if decimal_places == 0:
        return str(minor)
    scale = 10**decimal_places
    return f"{minor // scale}.{minor % scale:0{decimal_places}d}"


def parse_money(text: str, decimal_places: int) -> int | None:
    """ "1.50" -> 150; None if it is not a non-negative amount."""
    whole, _, frac = text.strip().partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > decimal_places:
        return None
    return int(whole) * 10**decimal_places + int(frac.ljust(decimal_places, "0") or 0)


class HatLink:
    """The line protocol, pure: lines in -> port events (and lines to answer); terminal
    calls -> lines out. Tracks the HAT's reported status to turn changes into events."""

    def __init__(self, decimal_places: int = 2, max_price: int = 10_000) -> None:
        self.decimal_places, self.max_price = decimal_places, max_price
        self.status = "OFF"
        self.stats: Counter[str] = Counter()
        self._offered = 0
        self._item: int | None = None
        self._vend_pending = False  # a request the terminal has not answered yet
        self._vend_open = False  # a request with no outcome (success / failure) yet

    # ------------------------------------------------------------ lines from the HAT

    def on_line(self, line: str, now: float) -> tuple[list[VendingEvent], list[str]]:
        parts = line.strip().split(",")
        if parts[:2] == ["c", "STATUS"] and len(parts) >= 3:
            return self._on_status(parts[2:], now)
        if parts[:3] == ["c", "VEND", "SUCCESS"]:
            return self._vend_done(VendSucceeded(now, self._item or 0))
        if parts[:2] == ["c", "ERR"]:
            text = ",".join(parts[2:]).replace('"', "").strip()
            if text.startswith("VEND 3"):
                return self._vend_done(VendFailed(now, self._item))
            self.stats["hat_error"] += 1
            log.warning("MDB HAT error: %s", text)
            return [], []
        if parts and parts[0] in ("r", "c", "d", "x"):
            return [], []  # r,ACK (polled), echoes: nothing to act on
        self.stats["unknown_line"] += 1
        return [], []

    def _on_status(self, fields: list[str], now: float) -> tuple[list[VendingEvent], list[str]]:
        new, prev = fields[0], self.status
        if new == "VEND":
            return self._vend_request(fields[1:], now)
        self.status = new
        events: list[VendingEvent] = []
        if prev == "VEND" and self._vend_open:
            # Left VEND with no outcome: the machine withdrew the request (cancel key,
            # its own timeout), approved or not; an approval must be voided. Into an
            # off state the SessionCancelled below says it.
            self._vend_pending = self._vend_open = False
            if new not in _OFF:
                events.append(VendCancelled(now, "vmc"))
        if new in _OFF and prev not in _OFF:
            if prev in _SESSION:
                events.append(SessionCancelled(now, "vmc"))
            events.append(ReaderDisabled(now))
        elif new == "ENABLED":
            events.append(SessionEnded(now) if prev in _SESSION else ReaderEnabled(now))
        elif new == "IDLE" and prev == "ENABLED":
            events.append(SessionStarted(now, self._offered))
        elif new not in (*_OFF, "ENABLED", "IDLE"):
            self.stats["unknown_status"] += 1
        return events, []

    def _vend_request(self, fields: list[str], now: float) -> tuple[list[VendingEvent], list[str]]:
        price = parse_money(fields[0], self.decimal_places) if fields else None
        item = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        self.status = "VEND"
        if price is None:
            self.stats["malformed"] += 1
            return [], [self.stop()]
        self._item = item
        if price > min(self.max_price, self._offered or self.max_price):
            self.stats["over_max_price"] += 1
            return [], [self.stop()]
        self._vend_pending = self._vend_open = True
        return [VendRequested(now, item, price)], []

    def _vend_done(self, event: VendingEvent) -> tuple[list[VendingEvent], list[str]]:
        self._vend_pending = self._vend_open = False
        return [event], []

    # ------------------------------------------------------------ lines to the HAT

    def enable(self) -> str:
        return "C,1"

    def disable(self) -> str:
        return "C,0"

    def start(self, funds: int) -> str | None:
        if self.status != "ENABLED":
            self.stats["refused_begin_session"] += 1
            return None
        self._offered = min(funds, self.max_price)
        return f"C,START,{money(self._offered, self.decimal_places)}"

    def approve(self, amount: int) -> str | None:
        if self.status != "VEND" or not self._vend_pending:
            self.stats["refused_approve_vend"] += 1
            return None
        self._vend_pending = False
        return f"C,VEND,{money(amount, self.decimal_places)}"

    def stop(self) -> str:
        self._vend_pending = False
        return "C,STOP"


class MdbHatController:
    """The port over the HAT's serial line (pyserial, imported when opened)."""

    name = "mdb-hat"

    def __init__(
        self,
        port: str,
        baud: int = 115_200,
        decimal_places: int = 2,
        max_price: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        self.port, self.baud = port, baud
        self.link = HatLink(decimal_places, max_price)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._events: list[VendingEvent] = []
        self._ser: serial.Serial | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._silent = False
        self.sent: list[str] = []  # lines written, for the simulator's report

    def start(self) -> None:
        import serial

        self._ser = serial.Serial(self.port, baudrate=self.baud, timeout=0.05)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mdb-hat", daemon=True)
        self._thread.start()
        self._write(self.link.enable())

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._ser is not None:
            self._ser.close()
            self._ser = None

    def silence(self, silent: bool) -> None:
        """Simulation hook: the Pi stops reading and writing (the HAT keeps the bus)."""
        self._silent = silent

    def _run(self) -> None:
        ser = self._ser
        assert ser is not None
        while not self._stop.is_set():
            try:
                raw = ser.readline()
            except OSError as exc:
                log.warning("mdb-hat: read failed: %s", exc)
                return
            if not raw or self._silent:
                continue
            line = raw.decode("ascii", "replace")
            with self._lock:
                events, replies = self.link.on_line(line, self._clock.monotonic())
                self._events += events
            for reply in replies:
                self._write(reply)

    def _write(self, line: str | None) -> bool:
        if line is None or self._ser is None or self._silent:
            return False
        self._ser.write((line + "\n").encode("ascii"))
        self.sent.append(line)
        return True

    def events(self) -> list[VendingEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def begin_session(self, funds: int) -> bool:
        with self._lock:
            line = self.link.start(funds)
        return self._write(line)

    def approve_vend(self, amount: int) -> bool:
        with self._lock:
            line = self.link.approve(amount)
        return self._write(line)

    def deny_vend(self) -> bool:
        with self._lock:
            line = self.link.stop()
        return self._write(line)

    def end_session(self) -> bool:
        return self.deny_vend()

    def cancel(self) -> bool:
        return self.deny_vend()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.link.stats)
