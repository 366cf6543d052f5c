"""An emulated Qibixx MDB Pi HAT on a pty, for `blinkpay mdb-sim --transport mdb-hat`.

The HAT's firmware is played by the same pure CashlessDevice (it is the MDB cashless
device there too); the VMC's blocks reach it in-process, as they would reach the HAT's
microcontroller; its state changes go to the terminal's real MdbHatController as the
HAT's status lines over the pty, and the controller's C,... lines drive it. What can be
measured here is the host's turnaround (status line out -> the host's answer line in);
the bus's 5 ms is the HAT firmware's, not this process's.
"""

from __future__ import annotations

import os
import select
import threading
import time

from device.vending.hat import MdbHatController, money, parse_money
from device.vending.mdb import frames as f
from device.vending.mdb import vmc
from device.vending.mdb.cashless import CashlessDevice
from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.frames import Word
from device.vending.mdb.state import Output, State
from device.vending.port import VendFailed, VendRequested, VendSucceeded
from device.vending.vmc_sim import Link

_STATUS = {
    State.INACTIVE: "INACTIVE",
    State.DISABLED: "DISABLED",
    State.ENABLED: "ENABLED",
    State.SESSION_IDLE: "IDLE",
}


class HatEmulator:
    def __init__(self, fd: int, setup: ReaderSetup) -> None:
        self.fd, self.setup = fd, setup
        # The HAT has no per-transaction limit of its own: the host enforces it.
        self.device = CashlessDevice(
            ReaderSetup(decimal_places=setup.decimal_places, max_price=0xFFFF)
        )
        self.on = False  # C,1 switches the cashless slave on
        self.latencies_ms: list[float] = []  # no bus timing here (see the module doc)
        self.turnaround_ms: list[float] = []
        self.silences = 0
        self._lock = threading.RLock()
        self._reported = State.INACTIVE
        self._asked_at: float | None = None
        self._stop = threading.Event()
        self._buf = b""
        self._thread = threading.Thread(target=self._run, name="hat-emulator", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ the VMC's side (in-process)

    def transact(self, block: list[Word], timeout: float = 0.0) -> vmc.Reply:
        with self._lock:
            if not self.on:
                self.silences += 1
                return vmc.Reply("silence")
            words = self._feed(block)
            reply = vmc.parse_reply(words)
            if reply.kind == "data":
                self._feed([(f.ACK, False)])
            return reply

    def send_raw(self, data: bytes) -> list[Word]:
        with self._lock:
            return self._feed([(b, False) for b in data])

    def _feed(self, block: list[Word]) -> list[Word]:
        out = Output()
        for word in block:
            out += self.device.receive(word, time.monotonic())
        self._report(out)
        return out.send

    # ------------------------------------------------------------ the host's side (pty)

    def _run(self) -> None:
        while not self._stop.is_set():
            if select.select([self.fd], [], [], 0.01)[0]:
                try:
                    self._buf += os.read(self.fd, 256)
                except OSError:
                    return
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    self._command(line.decode("ascii", "replace").strip())
            with self._lock:
                self._report(self.device.tick(time.monotonic()))

    def _command(self, line: str) -> None:
        if self._asked_at is not None and line.startswith(("C,VEND", "C,STOP")):
            self.turnaround_ms.append((time.perf_counter() - self._asked_at) * 1000.0)
            self._asked_at = None
        parts = line.split(",")
        now = time.monotonic()
        with self._lock:
            ok = True
            if parts[:2] == ["C", "1"]:
                self.on = True
            elif parts[:2] == ["C", "0"]:
                self.on = False
            elif parts[:2] == ["C", "START"] and len(parts) > 2:
                ok = self.device.begin_session(self._minor(parts[2]), now)
            elif parts[:2] == ["C", "VEND"] and len(parts) > 2:
                ok = self.device.approve_vend(self._minor(parts[2]), now)
            elif parts[:2] == ["C", "STOP"]:
                ok = self.device.deny_vend(now) or self.device.end_session(now)
            if not ok:
                self._say(f'c,ERR,"{line} refused"')
            self._report(Output())

    def _minor(self, text: str) -> int:
        return parse_money(text, self.setup.decimal_places) or 0

    def _report(self, out: Output) -> None:
        """State changes and vend outcomes as the HAT's status lines."""
        for event in out.events:
            if isinstance(event, VendRequested):
                price = money(event.price, self.setup.decimal_places)
                self._say(f"c,STATUS,VEND,{price},{event.item}")
                self._asked_at = time.perf_counter()
            elif isinstance(event, VendSucceeded):
                self._say("c,VEND,SUCCESS")
            elif isinstance(event, VendFailed):
                self._say('c,ERR,"VEND 3"')
        state = self.device.state
        if state != State.VEND:
            self._asked_at = None  # the request is gone: nothing to time
        if state != self._reported and state in _STATUS:
            self._say(f"c,STATUS,{_STATUS[state]}")
        self._reported = state

    def _say(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode("ascii"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def open_hat_link(setup: ReaderSetup | None = None) -> Link:
    setup = setup or ReaderSetup()
    master, slave = os.openpty()
    emulator = HatEmulator(master, setup)
    reader = MdbHatController(
        os.ttyname(slave), decimal_places=setup.decimal_places, max_price=setup.max_price
    )
    reader.start()
    deadline = time.monotonic() + 2.0
    while not emulator.on and time.monotonic() < deadline:
        time.sleep(0.001)  # C,1 on its way

    def close() -> None:
        reader.close()
        emulator.close()
        os.close(master)
        os.close(slave)

    return Link("mdb-hat", emulator, reader, close, reader.silence)
