"""The simulated vending controller: an in-process, scripted vending machine.

Under the port it is the real MDB cashless device, driven by a scripted VMC through the
Loopback (no bus, no threads): the demo and tests get the protocol's real behaviour
(limits, refusals, out-of-sequence answers) without a serial port. The machine's side is
played by select(), vend_result(), press_cancel(), disable(), enable() and reset(); the
machine polls after every move, as a VMC polls all the time.
"""

from __future__ import annotations

from device.clock import Clock, SystemClock
from device.vending.mdb import frames as f
from device.vending.mdb import vmc
from device.vending.mdb.cashless import CashlessDevice
from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.loopback import Loopback
from device.vending.port import VendingEvent

MAX_POLLS = 4  # answers queued at once: at most a denial, a cancel request and a session


class SimVendingController:
    name = "sim"

    def __init__(
        self, setup: ReaderSetup | None = None, clock: Clock | None = None, auto_vend: bool = True
    ) -> None:
        """auto_vend: the machine vends as soon as it is paid (success), and closes the
        session; False leaves vend_result() to the script."""
        self.setup = setup or ReaderSetup()
        self.bus = Loopback(CashlessDevice(self.setup), step=0.0)
        self.clock = clock or SystemClock()
        self.auto_vend = auto_vend
        self.transcript: list[str] = []  # the machine's view: what the reader answered
        self._item = 0

    # ------------------------------------------------------------ the port

    def start(self) -> None:
        self._sync()
        self.bus.start_up()

    def close(self) -> None:
        pass

    def events(self) -> list[VendingEvent]:
        self._sync()
        self.bus.tick(0.0)
        self._pump()
        return self.bus.take()

    def begin_session(self, funds: int) -> bool:
        return self._call(self.bus.device.begin_session(funds, self._sync()))

    def approve_vend(self, amount: int) -> bool:
        ok = self._call(self.bus.device.approve_vend(amount, self._sync()))
        if ok and self.auto_vend:
            self.vend_result(True)
        return ok

    def deny_vend(self) -> bool:
        return self._call(self.bus.device.deny_vend(self._sync()))

    def end_session(self) -> bool:
        ok = self._call(self.bus.device.end_session(self._sync()))
        self._complete_if_asked()
        return ok

    def cancel(self) -> bool:
        ok = self._call(self.bus.device.cancel(self._sync()))
        self._complete_if_asked()
        return ok

    def stats(self) -> dict[str, int]:
        return dict(self.bus.device.stats)

    # ------------------------------------------------------------ the machine (scripted)

    def select(self, item: int, price: int) -> None:
        """The customer presses a selection (price in minor units)."""
        self._item = item
        self._say(vmc.vend_request(self.setup.to_scaled(price), item))
        self._pump()

    def vend_result(self, success: bool) -> None:
        """The machine reports the vend and closes the session."""
        self._say(vmc.vend_success(self._item) if success else vmc.vend_failure())
        self._say(vmc.session_complete())
        self._pump()

    def press_cancel(self) -> None:
        self._say(vmc.vend_cancel())
        self._say(vmc.session_complete())

    def disable(self) -> None:
        self._say(vmc.reader(f.READER_DISABLE))

    def enable(self) -> None:
        self._say(vmc.reader(f.READER_ENABLE))

    def reset(self) -> None:
        """The machine resets the reader (power cycle, service mode) and sets it up again."""
        self._sync()
        self.bus.start_up()

    # ------------------------------------------------------------ helpers

    def _sync(self) -> float:
        self.bus.now = self.clock.monotonic()
        return self.bus.now

    def _say(self, block: list[f.Word]) -> str:
        self._sync()
        reply = self.bus.command(block)
        name = reply.kind if reply.kind != "data" else f"data {reply.data[0]:02X}H"
        self.transcript.append(name)
        return name

    def _pump(self) -> None:
        """The VMC's polling: collect every answer the reader has queued."""
        for _ in range(MAX_POLLS):
            if self._say(vmc.poll()) == "ack":
                return

    def _call(self, ok: bool) -> bool:
        self._pump()
        return ok

    def _complete_if_asked(self) -> None:
        """The reader asked to end the session (SESSION CANCEL REQUEST): the machine ends it."""
        if f"data {f.SESSION_CANCEL_REQUEST:02X}H" in self.transcript[-MAX_POLLS:]:
            self._say(vmc.session_complete())
