"""The overlap: the match runs while liveness is judged, its answer counts only for the
bound track and only after liveness, the host is asked the moment both hold; a terminal
without a challenge light asks for the PIN on every face payment unless the operator chose
otherwise."""

from __future__ import annotations

from device.core import events as ev
from device.core.challenge import ChallengeReason, ChallengeVerdict
from device.core.config import SessionConfig
from device.core.policy import Payer
from device.core.reasons import Reason
from tests.core.conftest import Harness, make_session, match

PASSED = ChallengeVerdict(True, ChallengeReason.FOLLOWED, 1, 0.1, 0.12, 50, 30.0, 15)


def _harness(challenge: bool = True, pinless_without_ring: bool = False) -> Harness:
    return Harness(
        make_session(
            session=SessionConfig(pinless_without_ring=pinless_without_ring), challenge=challenge
        )
    )


def _alice(h: Harness, track: int = 1) -> None:
    h.match_with(match("alice"), {"alice": Payer("alice", offline_allowance_left=1000)}, track)


def test_the_early_match_waits_for_liveness_then_the_host_is_asked_at_once() -> None:
    h = _harness()
    h.to_intent()
    assert h.of(ev.RequestMatch) == [ev.RequestMatch(1)]
    _alice(h)  # the answer comes while the challenge still plays
    assert h.state == "intent" and not h.of(ev.RequestAuthorization)
    h.send(ev.BlinkDetected, 1)
    assert h.state == "intent" and not h.of(ev.WriteLedger)  # liveness not yet whole
    out = h.send(ev.ChallengeDone, 1, PASSED)
    assert h.state == "authorize"
    kinds = [type(e) for e in out]
    assert kinds.index(ev.WriteLedger) < kinds.index(ev.RequestAuthorization)
    assert h.of(ev.RequestMatch) == [ev.RequestMatch(1)]  # no second search


def test_a_match_of_another_track_is_dropped() -> None:
    h = _harness()
    h.to_intent(track=1)
    _alice(h, track=2)  # computed on another face
    h.send(ev.BlinkDetected, 1)
    h.send(ev.ChallengeDone, 1, PASSED)
    assert h.state == "match" and not h.of(ev.RequestAuthorization)  # waits for its own
    _alice(h, track=1)
    assert h.state == "authorize"


def test_a_match_of_a_face_that_left_does_not_carry_over() -> None:
    h = _harness()
    h.to_intent(track=1)
    h.send(ev.FaceLost, 1)
    _alice(h, track=1)  # the late answer for the face that left
    h.advance(2.0)  # cooldown-free abort: idle again
    h.to_intent(track=3)
    h.send(ev.BlinkDetected, 3)
    h.send(ev.ChallengeDone, 3, PASSED)
    assert h.state == "match" and not h.of(ev.RequestAuthorization)
    assert h.of(ev.RequestMatch)[-1] == ev.RequestMatch(3)


def test_an_early_unknown_is_searched_again_on_every_frame_seen() -> None:
    h = _harness()
    h.to_intent()
    h.match_with(match(), {})
    h.send(ev.BlinkDetected, 1)
    h.send(ev.ChallengeDone, 1, PASSED)
    assert h.state == "match" and h.of(ev.RequestMatch) == [ev.RequestMatch(1)] * 2
    _alice(h)
    assert h.state == "authorize"


def test_a_challenge_passed_before_the_prompt_counts_for_the_bound_face() -> None:
    h = _harness()
    h.send(ev.FaceSeen, 1, True)
    h.send(ev.ChallengeDone, 1, PASSED)  # the code ended while the customer stepped up
    h.to_intent()
    _alice(h)
    h.send(ev.BlinkDetected, 1)
    assert h.state == "authorize"


def test_a_ringless_terminal_asks_for_the_pin_on_every_face_payment() -> None:
    h = _harness(challenge=False)
    h.to_match()
    _alice(h)  # a clear match, under pin_over: with a ring it would pay on the face
    assert h.state == "pin"
    assert ev.StateChanged("pin", (Reason.PIN_NO_RING,)) in h.effects
    h.type_pin("4321")
    (auth,) = h.of(ev.RequestAuthorization)
    assert all(c.pin_block is not None for c in auth.candidates)
    (row,) = h.of(ev.WriteLedger)
    assert row.record.factors == ("face", "blink", "pin")
    assert Reason.PIN_NO_RING in row.record.reasons


def test_pinless_without_a_ring_is_the_operators_explicit_choice() -> None:
    assert SessionConfig().pinless_without_ring is False
    h = _harness(challenge=False, pinless_without_ring=True)
    h.to_match()
    _alice(h)
    assert h.state == "authorize" and not h.of(ev.KeyPressed)


NOT_FOLLOWED = ChallengeVerdict(False, ChallengeReason.NOT_FOLLOWED, 0, -0.01, 0.0, 50, 30.0, 20)


def _ride_to_the_gate(h: Harness) -> None:
    """Customer 1 pays; the gate opens and waits for them to walk through."""
    h.to_intent()
    _alice(h)
    h.send(ev.BlinkDetected, 1)
    h.send(ev.ChallengeDone, 1, PASSED)
    (auth,) = h.of(ev.RequestAuthorization)
    h.send(ev.AuthResponse, auth.tx_id, True, "approved_online")
    assert h.state == "actuate"


def test_the_next_customers_code_starts_while_the_one_before_walks_through() -> None:
    h = _harness()
    _ride_to_the_gate(h)
    h.send(ev.FaceSeen, 1, True)  # the paying face itself never starts a code again
    out = h.send(ev.FaceSeen, 2, True)  # the next one steps up
    (start,) = h.of(ev.StartChallenge, out)
    assert start.track_id == 2 and h.state == "actuate"
    h.send(ev.ChallengeDone, 2, PASSED)  # judged before they are even bound
    h.send(ev.PassageSeen)
    assert h.state == "cooldown" and not h.of(ev.StopChallenge)
    h.advance(0.05)  # the gate is clear: bound at once, the code already judged
    assert h.state == "face" and h.session.track_id == 2
    h.to_intent(track=2)
    _alice(h, track=2)
    h.send(ev.BlinkDetected, 2)
    assert h.state == "authorize"
    assert len(h.of(ev.StartChallenge)) == 2  # one code per customer


def test_a_next_customer_whose_code_failed_is_refused_once_bound() -> None:
    h = _harness()
    _ride_to_the_gate(h)
    h.send(ev.FaceSeen, 2, True)
    h.send(ev.ChallengeDone, 2, NOT_FOLLOWED)
    h.send(ev.PassageSeen)
    h.advance(0.05)
    assert ev.Notify("liveness_rejected", (Reason.CHALLENGE_FAILED,)) in h.effects
    assert h.state == "cooldown" and len(h.of(ev.RequestAuthorization)) == 1


def test_a_next_customer_who_leaves_stops_their_code() -> None:
    h = _harness()
    _ride_to_the_gate(h)
    h.send(ev.FaceSeen, 2, True)
    out = h.send(ev.FaceLost, 2)
    assert h.of(ev.StopChallenge, out) == [ev.StopChallenge()]
    h.send(ev.PassageSeen)
    h.advance(0.05)
    assert h.state == "idle" and h.session.track_id is None
