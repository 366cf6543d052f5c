"""The session driven through every state with a simulated clock: happy paths and every
failure before the host (the host and after: test_session_host.py)."""

from __future__ import annotations

import pytest

from device.core import events as ev
from device.core.liveness import LivenessReason
from device.core.policy import Payer
from device.core.reasons import Reason
from device.core.session import State
from device.crypto.pinblock import decipher_pin_block, pan_for_token

PIN_KEY = bytes(range(16))


def states(effects: list) -> list[str]:
    return [e.state for e in effects if isinstance(e, ev.StateChanged)]


# ------------------------------------------------------------------ the happy paths


def test_turnstile_ride_visits_every_state_in_order(turnstile) -> None:
    h = turnstile
    h.to_match()
    h.match_with(h.decision("alice"))
    auth = h.of(ev.RequestAuthorization)[0]
    assert auth.token == "alice" and auth.pin_block is None and auth.amount == 250
    h.now += 0.4
    h.send(ev.AuthResponse, auth.tx_id, True, "approved_online")
    assert h.state == "actuate"
    h.now += 1.0
    h.send(ev.PassageSeen)
    h.advance(2.0)
    assert states(h.effects) == [
        "face",
        "intent",
        "match",
        "authorize",
        "approved",
        "actuate",
        "cooldown",
        "idle",
    ]
    written = h.of(ev.WriteLedger)[0].record
    assert written.status == "pending" and written.factors == ("face", "blink")
    assert written.tx_id == auth.tx_id and written.match_score == pytest.approx(0.95)
    assert h.of(ev.PulseRelay) == [ev.PulseRelay(h.of(ev.WriteLedger)[0].record.tx_id, 300)]
    h.assert_ledger_before_actuation()


def test_write_ledger_precedes_request_and_update_precedes_relay(turnstile) -> None:
    h = turnstile
    h.to_match()
    out = h.match_with(h.decision("alice"))
    kinds = [type(e) for e in out]
    assert kinds.index(ev.WriteLedger) < kinds.index(ev.RequestAuthorization)
    out = h.send(ev.AuthResponse, "tx-1", True)
    kinds = [type(e) for e in out]
    assert kinds.index(ev.UpdateLedger) < kinds.index(ev.PulseRelay)


def test_vending_purchase_with_pin_over_limit(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 2500)
    h.to_match()
    h.match_with(h.decision("bob"))
    assert h.state == "pin"
    h.type_pin("4321")
    auth = h.of(ev.RequestAuthorization)[0]
    # the block deciphers to the PIN with the key and the token's PAN (the host's side)
    assert decipher_pin_block(PIN_KEY, auth.pin_block, pan_for_token("bob")) == "4321"
    assert h.of(ev.WriteLedger)[0].record.factors == ("face", "blink", "pin")
    assert Reason.PIN_OVER_LIMIT in h.of(ev.WriteLedger)[0].record.reasons
    h.send(ev.AuthResponse, auth.tx_id, True)
    assert h.of(ev.ApproveVend) == [ev.ApproveVend(auth.tx_id, 2500)]
    h.send(ev.VendResult, auth.tx_id, True)
    assert h.state == "cooldown" and h.session.amount is None
    h.assert_ledger_before_actuation()
    # the PIN is nowhere in the effects' text
    assert "4321" not in repr(h.effects)


def test_pin_keys_give_masked_feedback_and_clear(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 5000)
    h.to_match()
    h.match_with(h.decision("bob"))
    out = h.send(ev.KeyPressed, "1")
    assert ev.Prompt("PIN *") in out and ev.Buzz("key") in out
    h.send(ev.KeyPressed, "2")
    h.send(ev.KeyPressed, "*")  # clears typed digits, stays in PIN
    assert h.state == "pin" and h.of(ev.Prompt)[-1] == ev.Prompt("PIN ")
    assert ev.Buzz("error") in h.send(ev.KeyPressed, "#")  # too short
    h.type_pin("1234")
    assert h.state == "authorize"


def test_ambiguous_match_needs_pin_and_host_picks_payer(turnstile) -> None:
    h = turnstile
    h.to_match()
    h.match_with(h.decision("ann", "amy"))
    assert h.state == "pin"
    h.type_pin("2468")
    auth = h.of(ev.RequestAuthorization)[0]
    assert [c.token for c in auth.candidates] == ["ann", "amy"]
    for cand in auth.candidates:
        assert decipher_pin_block(PIN_KEY, cand.pin_block, pan_for_token(cand.token)) == "2468"
    assert h.of(ev.WriteLedger)[0].record.token is None
    h.send(ev.AuthResponse, auth.tx_id, True, "", "amy")
    assert h.of(ev.UpdateLedger)[-1].token == "amy" and h.state == "actuate"


def test_ambiguous_approval_without_a_candidate_payer_is_declined(turnstile) -> None:
    h = turnstile
    h.to_match()
    h.match_with(h.decision("ann", "amy"))
    h.type_pin("2468")
    h.send(ev.AuthResponse, "tx-1", True, "", "mallory")
    assert h.of(ev.UpdateLedger)[-1].status == "declined"
    assert not h.of(ev.PulseRelay)


def test_turnstile_without_passage_sensor_goes_straight_to_cooldown(make_harness) -> None:
    h = make_harness("turnstile", passage=None)
    h.to_match()
    h.match_with(h.decision("alice"))
    h.send(ev.AuthResponse, "tx-1", True)
    assert h.state == "cooldown" and len(h.of(ev.PulseRelay)) == 1


# ------------------------------------------------------------------ before the host


def test_face_needs_consecutive_good_frames(turnstile) -> None:
    h = turnstile
    h.send(ev.FaceSeen, 1, False)
    assert h.state == "idle"
    h.send(ev.FaceSeen, 1, True)
    h.send(ev.FaceSeen, 1, False)  # resets the count
    h.send(ev.FaceSeen, 1, True)
    h.send(ev.FaceSeen, 2, True)  # another track does not count
    assert h.state == "face"
    h.send(ev.FaceSeen, 1, True)
    h.send(ev.FaceSeen, 1, True)
    assert h.state == "intent" and h.session.track_id == 1
    assert ev.SetLeds("blink_prompt") in h.effects
    assert ev.Prompt("Blink to pay 2.50 EUR") in h.effects


@pytest.mark.parametrize("where", ["face", "intent", "match"])
def test_face_lost_aborts_before_pin(turnstile, where: str) -> None:
    h = turnstile
    h.send(ev.FaceSeen, 1)
    if where != "face":
        h.to_intent()
    if where == "match":
        h.send(ev.BlinkDetected, 1)
    assert h.state == where
    h.send(ev.FaceLost, 2)  # another face leaving changes nothing
    assert h.state == where
    h.send(ev.FaceLost, 1)
    assert h.state == "idle" and h.session.track_id is None
    assert ev.Notify("session_aborted", (Reason.FACE_LOST,)) in h.effects


@pytest.mark.parametrize("where", ["face", "intent", "match"])
def test_second_face_aborts_before_pin(turnstile, where: str) -> None:
    h = turnstile
    h.send(ev.FaceSeen, 1)
    if where != "face":
        h.to_intent()
    if where == "match":
        h.send(ev.BlinkDetected, 1)
    h.send(ev.SecondFace, 1)  # the bound track itself is not a second face
    assert h.state == where
    h.send(ev.SecondFace, 7)
    assert h.state == "idle"
    assert ev.Prompt("One person at a time") in h.effects


def test_blink_of_another_track_does_not_count(turnstile) -> None:
    h = turnstile
    h.to_intent(track=1)
    h.send(ev.BlinkDetected, 2)
    assert h.state == "intent"
    assert h.of(ev.RequestMatch) == [ev.RequestMatch(1)]  # asked early, for the bound face
    assert ev.StateChanged("match") not in h.effects


def test_face_swapped_between_blink_and_match_is_declined(turnstile) -> None:
    h = turnstile
    h.to_match(track=1)
    assert h.of(ev.RequestMatch) == [ev.RequestMatch(1)]
    h.match_with(h.decision("alice"), track=2)
    assert h.state == "cooldown"
    assert not h.of(ev.WriteLedger) and not h.of(ev.RequestAuthorization)
    assert Reason.FACE_SWAPPED in [r for e in h.of(ev.StateChanged) for r in e.reasons]


def test_liveness_rejection_declines_without_record(turnstile) -> None:
    h = turnstile
    h.to_intent()
    h.send(ev.LivenessRejected, 9, LivenessReason.NO_BLINK)  # another track: ignored
    assert h.state == "intent"
    h.send(ev.LivenessRejected, 1, LivenessReason.NO_BLINK)
    assert h.state == "cooldown" and not h.of(ev.WriteLedger)
    assert ev.Notify("liveness_rejected", (Reason.LIVENESS_FAILED,)) in h.effects


def test_intent_timeout(turnstile) -> None:
    h = turnstile
    h.to_intent()
    h.advance(5.0)
    assert h.state == "intent"
    h.advance(1.1)
    assert h.state == "idle"
    assert ev.Notify("session_aborted", (Reason.INTENT_TIMEOUT,)) in h.effects


def test_match_timeout(turnstile) -> None:
    h = turnstile
    h.to_match()
    h.advance(2.1)
    assert h.state == "idle"
    assert ev.Notify("session_aborted", (Reason.MATCH_TIMEOUT,)) in h.effects
    h.match_with(h.decision("alice"))  # a late match result is ignored
    assert h.state == "idle" and not h.of(ev.WriteLedger)


@pytest.mark.parametrize("how", ["cancel_event", "cancel_key"])
@pytest.mark.parametrize("where", ["intent", "match", "pin"])
def test_cancel_before_host(vending, how: str, where: str) -> None:
    h = vending
    h.send(ev.AmountSet, 3000)
    h.to_intent()
    if where in ("match", "pin"):
        h.send(ev.BlinkDetected, 1)
    if where == "pin":
        h.match_with(h.decision("bob"))
        if how == "cancel_key":
            h.send(ev.KeyPressed, "5")
            h.send(ev.KeyPressed, "*")  # first * clears the digit
    assert h.state == where
    if how == "cancel_event":
        h.send(ev.Cancel, "controller")
    else:
        h.send(ev.KeyPressed, "*")
    assert h.state == "idle"
    assert ev.Notify("session_aborted", (Reason.CANCELLED,)) in h.effects
    assert not h.of(ev.WriteLedger)


def test_pin_timeouts(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 3000)
    h.to_match()
    h.match_with(h.decision("bob"))
    h.send(ev.KeyPressed, "1")
    h.advance(7.9)
    assert h.state == "pin"
    h.advance(0.2)  # pin_digit_timeout_s = 8
    assert h.state == "idle"
    assert ev.Notify("session_aborted", (Reason.PIN_TIMEOUT,)) in h.effects


def test_pin_timeout_noticed_on_a_late_key(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 3000)
    h.to_match()
    h.match_with(h.decision("bob"))
    h.now += 30
    h.send(ev.KeyPressed, "1")
    assert h.state == "idle"
    assert ev.Notify("session_aborted", (Reason.PIN_TIMEOUT,)) in h.effects


def test_face_events_during_pin_are_tolerated(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 3000)
    h.to_match()
    h.match_with(h.decision("bob"))
    h.send(ev.FaceLost, 1)  # people look down at the keypad
    h.send(ev.SecondFace, 5)
    assert h.state == "pin"


def test_unknown_face_is_refused_without_record(turnstile) -> None:
    h = turnstile
    h.to_match()
    h.match_with(h.decision())
    assert h.state == "cooldown" and not h.of(ev.WriteLedger)
    assert ev.Notify("unknown_face", (Reason.UNKNOWN_FACE,)) in h.effects
    assert ev.SetLeds("declined") in h.effects and ev.Buzz("error") in h.effects


def test_known_user_refused_by_a_rule_is_recorded(turnstile) -> None:
    h = turnstile
    h.to_match()
    h.match_with(h.decision("alice"), {"alice": Payer("alice", status="suspended")})
    record = h.of(ev.WriteLedger)[0].record
    assert record.status == "declined" and record.reasons == (Reason.ACCOUNT_SUSPENDED,)
    assert not h.of(ev.RequestAuthorization) and h.state == "cooldown"


def test_vending_waits_for_a_selection(vending) -> None:
    h = vending
    h.to_intent()
    assert h.state == "face" and ev.Prompt("Choose a product") in h.effects
    h.send(ev.AmountSet, 150)
    assert h.state == "intent" and ev.Prompt("Blink to pay 1.50 EUR") in h.effects


def test_amount_follows_selection_until_blink(vending) -> None:
    h = vending
    h.send(ev.AmountSet, 150)
    h.send(ev.AmountSet, 150)  # same amount: nothing
    h.to_intent()
    h.send(ev.AmountSet, 180)
    assert h.state == "intent" and h.of(ev.Prompt)[-1] == ev.Prompt("Blink to pay 1.80 EUR")
    h.send(ev.AmountSet, None)
    assert h.state == "idle"
    assert ev.Notify("session_aborted", (Reason.AMOUNT_MISSING,)) in h.effects


@pytest.mark.parametrize("where", ["match", "pin"])
def test_amount_changed_after_blink_aborts(vending, where: str) -> None:
    h = vending
    h.send(ev.AmountSet, 3000)
    h.to_match()
    if where == "pin":
        h.match_with(h.decision("bob"))
    h.send(ev.AmountSet, 3500)
    assert h.state == "idle" and h.session.amount == 3500
    assert ev.Notify("session_aborted", (Reason.AMOUNT_CHANGED,)) in h.effects


def test_turnstile_ignores_amounts_and_idle_cancel_clears_vending_selection(
    turnstile, vending
) -> None:
    turnstile.send(ev.AmountSet, 999)
    assert turnstile.session.amount == 250
    vending.send(ev.AmountSet, 100)
    vending.send(ev.Cancel)
    assert vending.session.amount is None


def test_state_enum_covers_design() -> None:
    assert [s.name for s in State] == [
        "IDLE",
        "FACE",
        "INTENT",
        "MATCH",
        "SELECT",
        "PIN",
        "AUTHORIZE",
        "APPROVED",
        "DECLINED",
        "ACTUATE",
        "COOLDOWN",
    ]
