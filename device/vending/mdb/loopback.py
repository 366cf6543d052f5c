"""A VMC in the same process as the cashless device: blocks go in word by word, the
device's answer comes back, as on the bus but with no bus. The tests, the in-process
simulated controller and `blinkpay mdb-sim` all use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from device.vending.mdb import frames as f
from device.vending.mdb import vmc
from device.vending.mdb.cashless import CashlessDevice
from device.vending.mdb.frames import Word
from device.vending.port import VendingEvent


@dataclass
class Loopback:
    device: CashlessDevice
    now: float = 100.0
    step: float = 0.001  # time between two blocks (0: time is set from outside)
    events: list[VendingEvent] = field(default_factory=list)

    def send(self, block: Sequence[Word], dt: float | None = None) -> list[Word]:
        """The VMC sends a block `dt` seconds after the last (a lone ACK/RET/NAK belongs to
        the exchange before it: no time passes); returns the answer words."""
        if block and block[0][1]:
            self.now += self.step if dt is None else dt
        out: list[Word] = []
        for word in block:
            result = self.device.receive(word, self.now)
            out += result.send
            self.events += result.events
        return out

    def command(self, block: Sequence[Word], ack: bool = True) -> vmc.Reply:
        """Send a block and parse the answer; a data answer is ACKed, as a VMC does."""
        reply = vmc.parse_reply(self.send(block))
        if ack and reply.kind == "data":
            self.send([(f.ACK, False)], dt=0.0)
        return reply

    def tick(self, dt: float) -> None:
        self.now += dt
        self.events += self.device.tick(self.now).events

    def take(self) -> list[VendingEvent]:
        events, self.events = self.events, []
        return events

    def start_up(self, vmc_level: int = 1, max_price: int = 0xFFFF) -> Loopback:
        """RESET, JUST RESET, SETUP config, SETUP prices, READER ENABLE (Section 7.2)."""
        self.command(vmc.reset())
        self.command(vmc.poll())
        self.command(vmc.setup_config(vmc_level))
        self.command(vmc.setup_prices(max_price, 0))
        self.command(vmc.request_id())
        self.command(vmc.reader(f.READER_ENABLE))
        return self

    def enabled(self, level: int = 1) -> Loopback:
        """Started up, reader enabled, events so far dropped."""
        self.start_up(vmc_level=level)
        self.take()
        return self

    def in_session(self, funds: int = 5000) -> Loopback:
        """Enabled, a session offered with `funds` and taken by the VMC."""
        self.enabled()
        if not self.device.begin_session(funds, self.now):
            raise RuntimeError("the reader refused to begin a session")
        self.command(vmc.poll())
        self.take()
        return self
