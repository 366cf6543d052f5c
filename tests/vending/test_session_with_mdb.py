"""The real payment session in vending mode, paying through the MDB cashless device.

A small shell stand-in: port events go through bridge.session_events() into
Session.handle(), the session's effects through bridge.apply_effect() to the controller.
The controller is the simulated one: the real MDB device under a scripted machine.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from device.clock import FakeClock
from device.core import events as ev
from device.core.config import PaymentConfig, SessionConfig
from device.core.match import MatchDecision
from device.core.policy import Payer
from device.core.session import Session
from device.vending.bridge import apply_effect, session_events
from device.vending.mdb.config import ReaderSetup
from device.vending.port import ReaderEnabled, SessionEnded
from device.vending.sim import SimVendingController


@dataclass
class Shell:
    clock: FakeClock
    session: Session
    machine: SimVendingController
    effects: list[ev.Effect] = field(default_factory=list)
    tx_id: str | None = None

    def pump(self) -> None:
        """What the shell would do each tick: vending events in, effects out."""
        for event in self.machine.events():
            if isinstance(event, ReaderEnabled | SessionEnded):
                self.machine.begin_session(self.session.payment.max_per_tx)
            for core_event in session_events(event, self.tx_id):
                self.handle(core_event)

    def handle(self, event: ev.Event) -> None:
        for effect in self.session.handle(event):
            self.effects.append(effect)
            if isinstance(effect, ev.ApproveVend):
                self.tx_id = effect.tx_id
            apply_effect(effect, self.machine)

    def customer_pays(self, token: str = "alice") -> str:
        """A face, a blink, a match, the host's approval; returns the transaction id."""
        now = self.clock.monotonic
        for _ in range(self.session.cfg.face_frames):
            self.handle(ev.FaceSeen(now(), 1, True))
            self.clock.advance(0.07)
        self.handle(ev.BlinkDetected(now(), 1))
        decision = MatchDecision("match", token, 0.95, 0.7, (token,), "test")
        accounts = {token: Payer(token, offline_allowance_left=1000)}
        self.handle(ev.MatchResult(now(), 1, decision, accounts))
        auth = [e for e in self.effects if isinstance(e, ev.RequestAuthorization)][-1]
        self.handle(ev.AuthResponse(now(), auth.tx_id, True))
        self.pump()
        return auth.tx_id

    def ledger(self, tx_id: str) -> list[str]:
        return [
            e.status for e in self.effects if isinstance(e, ev.UpdateLedger) and e.tx_id == tx_id
        ]


def shell() -> Shell:
    clock = FakeClock()
    counter = itertools.count(1)
    session = Session(
        SessionConfig(pinless_without_ring=True),  # the operator chose it: no ring here
        PaymentConfig(),
        "vending",
        new_tx_id=lambda: f"tx-{next(counter)}",
        encrypt_pin=lambda pin, token: b"\0" * 16,
        auth_timeout_s=2.5,
        relay_pulse_ms=300,
        passage_timeout_s=None,
    )
    machine = SimVendingController(ReaderSetup(max_price=5000), clock, auto_vend=False)
    machine.start()
    s = Shell(clock, session, machine)
    s.pump()  # ReaderEnabled -> the session is offered
    s.pump()  # SessionStarted
    return s


def test_a_face_payment_vends_the_selection() -> None:
    s = shell()
    s.machine.select(item=3, price=250)
    s.pump()
    assert s.session.amount == 250
    tx_id = s.customer_pays()
    assert s.effects.count(ev.ApproveVend(tx_id, 250)) == 1
    assert "data 05H" in s.machine.transcript  # VEND APPROVED went out on the bus
    s.machine.vend_result(True)
    s.pump()
    assert s.ledger(tx_id) == ["approved"]
    assert s.session.state.value == "cooldown"


def test_a_jam_voids_the_payment() -> None:
    s = shell()
    s.machine.select(item=3, price=250)
    s.pump()
    tx_id = s.customer_pays()
    s.machine.vend_result(False)
    s.pump()
    assert s.ledger(tx_id) == ["approved", "voided"]
    assert any(isinstance(e, ev.VoidTransaction) for e in s.effects)


def test_the_machine_cancel_key_ends_the_attempt_before_payment() -> None:
    s = shell()
    s.machine.select(item=3, price=250)
    s.pump()
    assert s.session.amount == 250
    s.machine.press_cancel()
    s.pump()
    assert s.session.amount is None
    assert not any(isinstance(e, ev.WriteLedger) for e in s.effects)


def test_a_selection_over_the_limit_never_reaches_the_session() -> None:
    s = shell()
    s.machine.select(item=9, price=5001)
    s.pump()
    assert s.session.amount is None
    assert s.machine.stats()["over_max_price"] == 1
