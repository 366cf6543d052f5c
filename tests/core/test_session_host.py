"""The session at and after the host, with a simulated clock: duplicate and late answers,
declines, the offline fallback, voids, actuation timeouts and the wrong-PIN lockout."""

from __future__ import annotations

import pytest

from device.core import events as ev
from device.core.policy import Payer, PinLockout
from device.core.reasons import Reason

# ------------------------------------------------------------------ at and after the host


def _authorizing(h, token: str = "alice", **account: object) -> str:
    h.to_match()
    acct = {"offline_allowance_left": 1000, **account}
    h.match_with(h.decision(token), {token: Payer(token, **acct)})
    assert h.state == "authorize"
    return h.session.tx_id


def test_duplicate_and_late_auth_responses_are_ignored(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.send(ev.AuthResponse, "tx-other", True)
    assert h.state == "authorize"
    h.send(ev.AuthResponse, tx, True)
    relays = len(h.of(ev.PulseRelay))
    h.send(ev.AuthResponse, tx, True)  # duplicate
    h.send(ev.AuthResponse, tx, False, "wrong_pin")  # late contradiction
    assert len(h.of(ev.PulseRelay)) == relays == 1
    assert len(h.of(ev.UpdateLedger)) == 1
    ignored = [e for e in h.effects if e == ev.Notify("auth_response_ignored", tx_id=tx)]
    assert len(ignored) == 2


def test_host_decline_is_recorded_and_nothing_moves(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.send(ev.AuthResponse, tx, False, "insufficient_funds")
    assert h.of(ev.UpdateLedger) == [ev.UpdateLedger(tx, "declined", (Reason.INSUFFICIENT_FUNDS,))]
    assert h.state == "cooldown" and not h.of(ev.PulseRelay)
    h.advance(1.6)
    assert h.state == "idle"


def test_unknown_host_reason_maps_to_host_declined(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.send(ev.AuthResponse, tx, False, "some_new_code")
    assert h.of(ev.UpdateLedger)[0].reasons == (Reason.HOST_DECLINED,)


def test_auth_timeout_falls_back_to_offline_approval(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.advance(2.4)
    assert h.state == "authorize"
    h.advance(0.2)
    update = h.of(ev.UpdateLedger)[0]
    assert update.status == "approved" and update.offline
    assert update.reasons == (Reason.AUTH_TIMEOUT, Reason.APPROVED_OFFLINE)
    assert h.state == "actuate"
    h.send(ev.AuthResponse, tx, False, "insufficient_funds")  # late: ignored
    assert len(h.of(ev.UpdateLedger)) == 1
    h.assert_ledger_before_actuation()


def test_auth_unavailable_falls_back_at_once(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.send(ev.AuthUnavailable, "tx-other")
    assert h.state == "authorize"
    h.send(ev.AuthUnavailable, tx)
    assert h.of(ev.UpdateLedger)[0].reasons == (Reason.AUTH_UNAVAILABLE, Reason.APPROVED_OFFLINE)


def test_offline_declines_without_allowance(turnstile) -> None:
    h = turnstile
    _authorizing(h, offline_allowance_left=100)
    h.advance(3.0)
    update = h.of(ev.UpdateLedger)[0]
    assert update.status == "declined" and update.offline
    assert update.reasons == (Reason.AUTH_TIMEOUT, Reason.OFFLINE_ALLOWANCE)
    assert not h.of(ev.PulseRelay)


def test_offline_declines_pin_payments(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 400)
    h.to_match()
    h.match_with(h.decision("ann", "amy"))
    h.type_pin("1111")
    h.advance(3.0)
    assert h.of(ev.UpdateLedger)[0].reasons == (Reason.AUTH_TIMEOUT, Reason.OFFLINE_PIN_REQUIRED)


def test_offline_declines_over_floor(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 900)
    _authorizing(h)
    h.advance(3.0)
    assert h.of(ev.UpdateLedger)[0].reasons == (Reason.AUTH_TIMEOUT, Reason.OFFLINE_OVER_FLOOR)


def test_amount_changed_while_authorizing_voids(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 300)
    tx = _authorizing(h)
    h.send(ev.AmountSet, 350)
    assert h.of(ev.VoidTransaction) == [ev.VoidTransaction(tx, Reason.AMOUNT_CHANGED)]
    assert h.of(ev.UpdateLedger) == [ev.UpdateLedger(tx, "voided", (Reason.AMOUNT_CHANGED,))]
    h.send(ev.AuthResponse, tx, True)  # the host's late approval moves nothing
    assert not h.of(ev.ApproveVend) and h.state == "cooldown"


def test_cancel_while_authorizing_voids(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.send(ev.Cancel)
    assert h.of(ev.VoidTransaction) == [ev.VoidTransaction(tx, Reason.CANCELLED)]


def test_passage_timeout_voids_the_paid_ride(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.send(ev.AuthResponse, tx, True)
    h.advance(7.9)
    assert h.state == "actuate"
    h.advance(0.2)
    assert h.of(ev.UpdateLedger)[-1] == ev.UpdateLedger(tx, "voided", (Reason.PASSAGE_TIMEOUT,))
    assert h.of(ev.VoidTransaction) == [ev.VoidTransaction(tx, Reason.PASSAGE_TIMEOUT)]
    assert h.state == "cooldown"


def test_vend_failure_and_vend_timeout_void(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 300)
    tx = _authorizing(h)
    h.send(ev.AuthResponse, tx, True)
    h.send(ev.VendResult, "tx-other", False)
    assert h.state == "actuate"
    h.send(ev.VendResult, tx, False)
    assert h.of(ev.VoidTransaction) == [ev.VoidTransaction(tx, Reason.VEND_FAILED)]


def test_vend_timeout_voids(make_harness) -> None:
    h = make_harness("vending")
    h.send(ev.AmountSet, 300)
    tx = _authorizing(h)
    h.send(ev.AuthResponse, tx, True)
    h.advance(30.1)
    assert h.of(ev.VoidTransaction) == [ev.VoidTransaction(tx, Reason.VEND_TIMEOUT)]


def test_paid_face_cannot_pay_again_until_it_leaves(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.send(ev.AuthResponse, tx, True)
    h.send(ev.PassageSeen)
    h.advance(2.0)
    assert h.state == "idle"
    h.to_intent(track=1)  # the same track is still in view
    assert h.state == "idle"
    h.send(ev.FaceLost, 1)
    h.to_intent(track=1)
    assert h.state == "intent"


def test_events_in_cooldown_are_ignored(turnstile) -> None:
    h = turnstile
    tx = _authorizing(h)
    h.send(ev.AuthResponse, tx, False, "host_declined")
    before = len(h.effects)
    for event in (
        ev.FaceSeen(h.now, 3),
        ev.BlinkDetected(h.now, 3),
        ev.KeyPressed(h.now, "5"),
        ev.PassageSeen(h.now),
        ev.Cancel(h.now),
    ):
        assert h.session.handle(event) == []
    assert len(h.effects) == before and h.state == "cooldown"


# ------------------------------------------------------------------ PIN lockout


def _wrong_pin(h, token: str = "bob") -> float:
    h.send(ev.AmountSet, 2500)
    h.to_match(track=h.track)
    h.match_with(h.decision(token), track=h.track)
    assert h.state == "pin", h.state
    h.type_pin("0000")
    answered_at = h.now
    h.send(ev.AuthResponse, h.session.tx_id, False, "wrong_pin")
    h.advance(2.0)
    h.send(ev.FaceLost, h.track)
    h.track += 1
    return answered_at


def test_wrong_pins_lock_the_user_with_growing_delays(vending) -> None:
    h = vending
    h.track = 1
    _wrong_pin(h)
    assert h.session.lockouts["bob"] == PinLockout(1, 0.0)
    at = _wrong_pin(h)
    first = h.session.lockouts["bob"]
    assert first.failures == 2 and first.locked_until == pytest.approx(at + 30.0)
    # locked: the next attempt is declined before any PIN is asked
    h.send(ev.AmountSet, 2500)
    h.to_match(track=h.track)
    h.match_with(h.decision("bob"), track=h.track)
    assert h.of(ev.WriteLedger)[-1].record.reasons == (Reason.PIN_LOCKED,)
    h.advance(2.0)
    h.send(ev.FaceLost, h.track)
    h.track += 1
    h.now = first.locked_until + 1
    at = _wrong_pin(h)
    second = h.session.lockouts["bob"]
    assert second.locked_until == pytest.approx(at + 60.0)  # doubled
    # a correct PIN clears the count
    h.now = second.locked_until + 1
    h.send(ev.AmountSet, 2500)
    h.to_match(track=h.track)
    h.match_with(h.decision("bob"), track=h.track)
    h.type_pin("1234")
    h.send(ev.AuthResponse, h.session.tx_id, True)
    assert "bob" not in h.session.lockouts


def test_lockouts_come_in_as_plain_data(make_harness) -> None:
    h = make_harness("vending", lockouts={"bob": PinLockout(3, 10_000.0)})  # restored by the shell
    h.send(ev.AmountSet, 2500)
    h.to_match()
    h.match_with(h.decision("bob"))
    assert h.of(ev.WriteLedger)[0].record.reasons == (Reason.PIN_LOCKED,)


def test_ambiguous_drops_locked_candidates(make_harness) -> None:
    h = make_harness("turnstile", lockouts={"amy": PinLockout(3, 10_000.0)})
    h.to_match()
    h.match_with(h.decision("ann", "amy"))
    h.type_pin("1357")
    auth = h.of(ev.RequestAuthorization)[0]
    assert [c.token for c in auth.candidates] == ["ann"]


def test_amount_change_after_approval_is_ignored(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 300)
    tx = _authorizing(h)
    h.send(ev.AuthResponse, tx, True)
    assert h.state == "actuate"
    assert h.send(ev.AmountSet, 999) == []  # the vend in progress is the paid one
    h.send(ev.VendResult, tx, True)
    assert h.state == "cooldown" and not h.of(ev.VoidTransaction)


def test_an_unknown_event_changes_nothing(turnstile) -> None:
    h = turnstile
    h.to_intent()
    assert h.session.handle(object()) == []  # type: ignore[arg-type]
    assert h.state == "intent"
