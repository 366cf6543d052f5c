"""The vending flow over MDB: face + blink open the machine's session, the machine's price
goes through the payment rules, the outcome settles or voids. The real session and the
shell's VendingDriver over the simulated controller (the real MDB device, scripted VMC)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from device.clock import FakeClock
from device.core import events as ev
from device.core.config import PaymentConfig, SessionConfig
from device.core.match import MatchDecision
from device.core.policy import Payer, VendFunds, vend_funds
from device.core.session import Session
from device.shell.vending import VendingDriver
from device.vending.mdb.config import ReaderSetup
from device.vending.sim import SimVendingController


@dataclass
class Rig:
    clock: FakeClock
    session: Session
    machine: SimVendingController
    online: bool = True
    effects: list[ev.Effect] = field(default_factory=list)
    posted: list[object] = field(default_factory=list)
    driver: VendingDriver | None = None

    def feed(self, event: ev.Event) -> None:
        effects = self.session.handle(event)
        self.effects += effects
        assert self.driver is not None
        for effect in effects:
            if isinstance(effect, ev.ApproveVend):  # the executor's hook, after the ledger
                self.driver.approve(effect, event.now)
        self.driver.after(effects, event.now)

    def pump(self) -> None:
        assert self.driver is not None
        self.driver.poll()
        while self.posted:
            self.feed(self.posted.pop(0))  # type: ignore[arg-type]

    def face_and_blink(self, track: int = 1, token: str = "alice", allowance: int = 1000) -> None:
        now = self.clock.monotonic
        for _ in range(self.session.cfg.face_frames):
            self.feed(ev.FaceSeen(now(), track, True))
            self.clock.advance(0.07)
        self.feed(ev.BlinkDetected(now(), track))
        decision = MatchDecision("match", token, 0.95, 0.7, (token,), "test")
        accounts = {token: Payer(token, offline_allowance_left=allowance)}
        self.feed(ev.MatchResult(now(), track, decision, accounts))
        self.pump()

    def host_answers(self, approved: bool = True) -> str:
        auth = [e for e in self.effects if isinstance(e, ev.RequestAuthorization)][-1]
        if approved:
            self.feed(ev.AuthResponse(self.clock.monotonic(), auth.tx_id, True))
        else:
            self.feed(ev.AuthUnavailable(self.clock.monotonic(), auth.tx_id))
        self.pump()
        return auth.tx_id

    def ledger(self, tx_id: str) -> list[str]:
        return [
            e.status for e in self.effects if isinstance(e, ev.UpdateLedger) and e.tx_id == tx_id
        ]


def rig(online: bool = True) -> Rig:
    clock = FakeClock()
    counter = itertools.count(1)
    session = Session(
        SessionConfig(select_timeout_s=5.0, pinless_without_ring=True),
        PaymentConfig(),
        "vending",
        new_tx_id=lambda: f"tx-{next(counter)}",
        encrypt_pin=lambda pin, token: b"\0" * 16,
        auth_timeout_s=2.5,
        relay_pulse_ms=300,
        passage_timeout_s=None,
        vend_session=True,
    )
    machine = SimVendingController(ReaderSetup(max_price=5000), clock, auto_vend=False)
    r = Rig(clock, session, machine, online)
    r.driver = VendingDriver(machine, r.feed, r.posted.append, lambda: r.online)
    r.driver.start()
    r.pump()
    return r


def test_face_and_blink_open_the_machine_session_with_the_funds_the_rules_allow() -> None:
    r = rig()
    r.face_and_blink()
    assert r.session.state.value == "select"
    assert ev.OpenVendSession(10_000, 500) in r.effects  # max_per_tx; offline floor
    assert "data 03H" in r.machine.transcript  # BEGIN SESSION went out
    assert r.driver is not None and r.driver.open


def test_the_selection_is_paid_and_vended() -> None:
    r = rig()
    r.face_and_blink()
    r.machine.select(item=3, price=250)
    r.pump()
    tx_id = r.host_answers()
    assert r.effects.count(ev.ApproveVend(tx_id, 250)) == 1
    # the approval's ledger row comes before the approval itself
    kinds = [type(e).__name__ for e in r.effects]
    assert kinds.index("UpdateLedger") < kinds.index("ApproveVend")
    r.machine.vend_result(True)
    r.pump()
    assert r.ledger(tx_id) == ["approved"]
    assert r.session.state.value == "cooldown"


def test_a_jam_voids_the_payment() -> None:
    r = rig()
    r.face_and_blink()
    r.machine.select(item=3, price=250)
    r.pump()
    tx_id = r.host_answers()
    r.machine.vend_result(False)
    r.pump()
    assert r.ledger(tx_id) == ["approved", "voided"]


def test_a_bus_reset_after_vend_approved_keeps_the_payment() -> None:
    """The machine took VEND APPROVED, then reset the bus before VEND SUCCESS: by MDB's
    RESET rule the vend counts as made, so the approved row stands (never voided and
    refunded for a product the machine may have delivered)."""
    r = rig()
    r.face_and_blink()
    r.machine.select(item=3, price=250)
    r.pump()
    tx_id = r.host_answers()  # the machine polled and ACKed VEND APPROVED
    assert "data 05H" in " ".join(r.machine.transcript)
    r.machine.reset()
    r.pump()
    assert r.ledger(tx_id) == ["approved"]
    assert r.session.state.value == "cooldown"
    assert r.machine.stats()["reset_after_approval"] == 1


def test_offline_the_session_offers_the_offline_funds_and_pays_within_them() -> None:
    r = rig(online=False)
    r.face_and_blink(allowance=300)
    assert ev.OpenVendSession(10_000, 300) in r.effects
    r.machine.select(item=4, price=400)  # above the 300 offered: the reader denies it
    r.pump()
    assert r.machine.stats()["over_max_price"] == 1
    r.machine.select(item=5, price=200)
    r.pump()
    tx_id = r.host_answers(approved=False)  # the host is unreachable
    assert r.ledger(tx_id) == ["approved"]
    assert ev.ApproveVend(tx_id, 200) in r.effects


def test_no_selection_times_out_and_ends_the_machine_session() -> None:
    r = rig()
    r.face_and_blink()
    r.clock.advance(5.1)
    r.feed(ev.Tick(r.clock.monotonic()))
    r.pump()
    assert r.session.state.value == "idle"
    assert ev.StateChanged("idle", (ev.Reason.SELECT_TIMEOUT,)) in r.effects
    assert "data 04H" in r.machine.transcript  # SESSION CANCEL REQUEST: the VMC ends it
    assert r.driver is not None and not r.driver.open
    assert not any(isinstance(e, ev.WriteLedger) for e in r.effects)


def test_a_declined_payment_is_denied_on_the_bus_after_its_ledger_row() -> None:
    r = rig()
    r.face_and_blink()
    r.machine.select(item=3, price=250)
    r.pump()
    auth = [e for e in r.effects if isinstance(e, ev.RequestAuthorization)][-1]
    r.feed(ev.AuthResponse(r.clock.monotonic(), auth.tx_id, False, "insufficient_funds"))
    r.pump()
    assert r.ledger(auth.tx_id) == ["declined"]
    assert "data 06H" in r.machine.transcript  # VEND DENIED


def test_vend_funds_respect_the_daily_room_and_ambiguity() -> None:
    cfg = PaymentConfig()
    spent = {"a": Payer("a", spent_today=29_000, offline_allowance_left=5000)}
    assert vend_funds(("a",), spent, cfg) == VendFunds(1000, 500)
    two = {"a": Payer("a"), "b": Payer("b")}
    assert vend_funds(("a", "b"), two, cfg) == VendFunds(10_000, 0)
    assert vend_funds((), {}, cfg) == VendFunds(0, 0)


def test_a_price_outlives_neither_its_attempt_nor_comes_from_another_session() -> None:
    r = rig()
    r.feed(ev.AmountSet(r.clock.monotonic(), 250))  # not in SELECT: not this customer's
    assert r.session.amount is None
    r.face_and_blink()
    r.machine.select(item=3, price=3000)  # over pin_over: the PIN is asked
    r.pump()
    assert r.session.state.value == "pin" and r.session.amount == 3000
    r.feed(ev.KeyPressed(r.clock.monotonic(), "*"))
    r.pump()
    assert r.session.state.value == "idle" and r.session.amount is None
    r.face_and_blink(track=2)
    assert r.session.state.value == "select"  # a new session, a new selection
