"""The vending machine around the session: the controller's events in, vending effects out.

In vending mode over MDB the machine asks for a price only inside a session the reader
opened, so the flow is: face + blink + match -> the session's OpenVendSession(funds) ->
begin_session (BEGIN SESSION on the next POLL) -> the customer selects -> VendRequested ->
AmountSet -> PIN / host / offline rules -> the approval's ledger row -> approve_vend
(VEND APPROVED) -> VEND SUCCESS (the sale stands) or VEND FAILURE (voided, refunded once).

Money moves only through the session's effects, so this inherits the executor's rule: the
approval reaches the machine only after its ledger row (the executor calls `approve`).
Everything else here is the machine's side of the conversation: a declined attempt is
denied, an attempt that ended closes the machine's session.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from device.core.events import (
    ApproveVend,
    Cancel,
    Effect,
    Event,
    OpenVendSession,
    StateChanged,
    VendResult,
)
from device.vending.bridge import session_events
from device.vending.port import (
    ReaderDisabled,
    SessionCancelled,
    SessionEnded,
    SessionStarted,
    VendCancelled,
    VendFailed,
    VendingController,
    VendingEvent,
    VendRequested,
    VendSucceeded,
)

log = logging.getLogger("blinkpay.vending")

Feed = Callable[[Event], None]  # an event into the session (and its effects run)
Post = Callable[[object], object]  # an event onto the main loop, handled after this one


class VendingDriver:
    def __init__(
        self,
        controller: VendingController,
        feed: Feed,
        post: Post,
        online: Callable[[], bool],
    ) -> None:
        self.controller, self._feed, self._post, self._online = controller, feed, post, online
        self.tx_id: str | None = None  # approved, waiting for the machine's vend outcome
        self.open = False  # a machine session offered or running
        self.started = False  # the machine took the session we offered last
        self.requested = False  # a VEND REQUEST waits for our answer
        self.offer: int | None = None  # funds to offer once the machine is free
        self.counters: Counter[str] = Counter()

    def start(self) -> None:
        self.controller.start()

    def close(self) -> None:
        self.controller.close()

    # -- the machine -> the session (main thread, every tick) -------------------------------
    def poll(self) -> None:
        for event in self.controller.events():
            self._machine(event)
        if self.offer is not None:
            self._try_offer()

    def _machine(self, event: VendingEvent) -> None:
        self.counters[type(event).__name__] += 1
        log.info("machine: %s", type(event).__name__, extra={"event": "vending", **_fields(event)})
        ours, tx_id = self.started, self.tx_id
        match event:
            case SessionStarted():
                self.open = self.started = True
            case SessionEnded() | SessionCancelled() | ReaderDisabled(reason="bus_reset"):
                self.open = self.started = self.requested = False
            case VendRequested():
                self.requested = True
            case VendCancelled():
                self.requested = False
        if isinstance(event, VendSucceeded | VendFailed | VendCancelled | SessionCancelled):
            self.tx_id = None  # its outcome is known now (a withdrawn approval: not vended)
        core_events = session_events(event, tx_id)
        if isinstance(event, SessionEnded) and ours:
            # The machine closed the session it took from our last offer (it refused a
            # selection over the funds, the customer walked off): the attempt is over. The
            # end of a session we closed ourselves, or of an older one, is only an echo.
            core_events.append(Cancel(event.now, source="vending_machine"))
        for core_event in core_events:
            self._feed(core_event)

    # -- the session -> the machine ---------------------------------------------------------
    def approve(self, effect: ApproveVend, now: float) -> None:
        """The executor's hook, run after the approval's ledger row is written."""
        self.tx_id, self.requested = effect.tx_id, False
        if not self.controller.approve_vend(effect.amount):
            # the machine withdrew the request meanwhile: nothing will be vended
            self.counters["approval_refused"] += 1
            self._post(VendResult(now, effect.tx_id, False))

    def after(self, effects: list[Effect], now: float) -> None:
        """The rest of a batch the executor ran: sessions to open, answers, closes."""
        for effect in effects:
            match effect:
                case OpenVendSession():
                    self._offer(effect, now)
                case StateChanged(state="declined" | "idle"):
                    self._close(effect.state)

    def _close(self, state: str) -> None:
        """A declined or ended attempt: VEND DENIED for a waiting request (the declined
        row is already written), then the machine's session is closed."""
        if state == "declined" and self.requested:
            self.requested = False
            self.controller.deny_vend()
        self.offer = None
        if self.open:
            self.open = self.started = False
            self.controller.end_session()

    def _offer(self, effect: OpenVendSession, now: float) -> None:
        online = self._online()
        funds = effect.funds if online else effect.offline_funds
        self.counters["offered_online" if online else "offered_offline"] += 1
        if funds <= 0:  # nothing may be spent: no session to offer
            self.counters["offer_refused"] += 1
            self._post(Cancel(now, source="vending_machine"))
            return
        self.offer = funds
        self._try_offer()

    def _try_offer(self) -> None:
        """BEGIN SESSION once the machine is free (the last session still closing, the
        reader disabled): tried every tick until the session's select timeout ends it."""
        assert self.offer is not None
        if self.controller.begin_session(self.offer):
            self.open, self.started, self.offer = True, False, None
        else:
            self.counters["offer_deferred"] += 1


def _fields(event: VendingEvent) -> dict[str, object]:
    return {k: v for k, v in vars(event).items() if k != "now"}
