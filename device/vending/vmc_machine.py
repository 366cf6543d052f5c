"""A whole vending machine on the VMC's end of the pty: it starts the reader up, polls it
every few milliseconds as a VMC does, and plays the customers queued with `serve()`.

Used by `blinkpay demo` and by the end-to-end tests: the terminal (in this process or in a
`blinkpay run` process) is the cashless device on the other end and knows nothing of the
script. What each customer got is read back from the machine's own side: the funds of
BEGIN SESSION, the VEND APPROVED amount, whether the product came out. So a test compares
the terminal's ledger and the host's balances with what the machine really vended.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from device.vending.mdb import frames as f
from device.vending.mdb import vmc
from device.vending.vmc_sim import VmcSide

# vend: the product comes out; jam: VEND FAILURE; cancel: the customer presses the
# machine's cancel key while the terminal decides; reset: the VMC resets the bus after the
# selection; slow_jam: the outcome comes only after the reader asks to end the session;
# walk_away: nobody selects (the terminal's select timeout ends it); hold: the product
# comes out on approval, but VEND SUCCESS waits for `release` (a test kills the reader then)
Act = Literal["vend", "jam", "cancel", "reset", "slow_jam", "walk_away", "hold"]
SILENCES_BEFORE_RESET = 3  # POLLs without an answer before the VMC resets the reader


@dataclass
class Customer:
    item: int
    price: int
    act: Act = "vend"
    funds: int | None = None  # BEGIN SESSION
    approved: int | None = None  # VEND APPROVED
    denied: bool = False  # VEND DENIED
    vended: bool = False  # VEND SUCCESS sent: the product came out
    lost: bool = False  # the session died with a reset or a silent reader
    done: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)  # "hold" only
    _since: float = 0.0


class VmcMachine:
    def __init__(
        self,
        side: VmcSide,
        poll_s: float = 0.005,
        cancel_after_s: float = 0.3,
        reply_timeout_s: float = 0.5,
    ) -> None:
        """reply_timeout_s: how long an answer may take. Long, on purpose: this machine
        plays customers, it does not time the reader (`blinkpay mdb-sim` does), and a
        late answer taken for the next one would desynchronise the script."""
        self.side, self.poll_s, self.cancel_after_s = side, poll_s, cancel_after_s
        self.reply_timeout_s = reply_timeout_s
        self.ready = False
        self.resets = 0
        self.sessions = 0  # BEGIN SESSIONs taken
        self.why_reset: Counter[str] = Counter()  # start-ups by cause
        self._queue: list[Customer] = []
        self._current: Customer | None = None
        self._silent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vmc", daemon=True)

    def start(self) -> VmcMachine:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)

    def serve(self, customer: Customer) -> Customer:
        """The next session the reader opens is this customer's."""
        with self._lock:
            self._queue.append(customer)
        return customer

    # ------------------------------------------------------------ the VMC's loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.ready:
                    self._start_up()
                else:
                    with self._lock:
                        self._step()
            except OSError:  # the pty went away: the machine is switched off
                return
            time.sleep(self.poll_s)

    def _start_up(self) -> None:
        blocks = [
            vmc.reset(),
            vmc.poll(),
            vmc.setup_config(1),
            vmc.setup_prices(0xFFFF, 0),
            vmc.reader(f.READER_ENABLE),
        ]
        replies = [self._transact(b) for b in blocks]
        if all(r.kind in ("ack", "data") for r in replies):
            self.ready, self._silent = True, 0
            self.resets += 1
        else:
            time.sleep(0.05)  # the reader is not there (yet): try again

    def _transact(self, block: list[f.Word]) -> vmc.Reply:
        return self.side.transact(block, self.reply_timeout_s)

    def _say(self, block: list[f.Word]) -> vmc.Reply:
        reply = self._transact(block)
        if reply.code == f.END_SESSION:
            self._end(lost=False)
        return reply

    def _step(self) -> None:
        reply = self._transact(vmc.poll())
        if reply.kind == "silence":
            self._silent += 1
            if self._silent >= SILENCES_BEFORE_RESET:
                self._restart("silent reader")
            return
        self._silent = 0
        match reply.code:
            case f.JUST_RESET:  # the reader restarted on its own: set it up again
                self._restart("reader reset")
            case f.BEGIN_SESSION:
                self._begin(f.read_u16(reply.data, 1))
            case f.VEND_APPROVED:
                self._approved(f.read_u16(reply.data, 1))
            case f.VEND_DENIED:
                if self._current is not None:
                    self._current.denied = True
                self._say(vmc.session_complete())
            case f.SESSION_CANCEL_REQUEST:
                self._cancel_requested()
            case None:
                self._timers()

    def _begin(self, funds: int) -> None:
        self.sessions += 1
        self._current = self._queue.pop(0) if self._queue else Customer(0, 0, "walk_away")
        c = self._current
        c.funds, c._since = funds, time.monotonic()
        if c.act == "walk_away":
            return
        if self._say(vmc.vend_request(c.price, c.item)).code == f.VEND_DENIED:
            c.denied = True  # refused at once (out of sequence): the session is over
            self._say(vmc.session_complete())
            return
        if c.act == "reset":  # the machine resets the bus with the selection pending
            self._transact(vmc.reset())
            self._restart("bus reset")

    def _approved(self, amount: int) -> None:
        c = self._current
        if c is None:
            return
        c.approved = amount
        if c.act == "slow_jam":
            return  # the outcome waits for the reader's SESSION CANCEL REQUEST
        if c.act == "hold":
            c.vended = True  # the machine dispenses; it reports when released
            return
        c.vended = c.act != "jam"
        self._say(vmc.vend_success(c.item) if c.vended else vmc.vend_failure())
        self._say(vmc.session_complete())

    def _cancel_requested(self) -> None:
        c = self._current
        if c is not None and c.approved is not None and not c.vended and c.act == "slow_jam":
            self._say(vmc.vend_failure())
        self._say(vmc.session_complete())

    def _timers(self) -> None:
        c = self._current
        if c is not None and c.act == "hold" and c.approved is not None and c.release.is_set():
            self._say(vmc.vend_success(c.item))
            self._say(vmc.session_complete())
            return
        if c is None or c.act != "cancel" or c.approved is not None or c.denied:
            return
        if time.monotonic() - c._since >= self.cancel_after_s:
            c.denied = self._say(vmc.vend_cancel()).code == f.VEND_DENIED
            self._say(vmc.session_complete())

    def _restart(self, why: str) -> None:
        self.why_reset[why] += 1
        self._end(lost=True)
        self.ready = False

    def _end(self, lost: bool) -> None:
        c, self._current = self._current, None
        if c is not None:
            c.lost = lost
            c.done.set()
