"""Fusion in the session: the blink AND the passive cue AND (where configured) the
illumination challenge; every refusal names its reason."""

from __future__ import annotations

import pytest

from device.core import events as ev
from device.core.challenge import ChallengeReason, ChallengeVerdict
from device.core.config import ChallengeConfig, PaymentConfig, SessionConfig
from device.core.reasons import Reason
from device.core.session import Session
from tests.core.conftest import Harness, encrypt_pin, make_session

PASSED = ChallengeVerdict(True, ChallengeReason.FOLLOWED, 1, 4.0, 8.0, 50, 15.0)
NOT_FOLLOWED = ChallengeVerdict(False, ChallengeReason.NOT_FOLLOWED, 0, -3.0, 0.1, 50, 15.0)
TOO_SLOW = ChallengeVerdict(False, ChallengeReason.FRAME_RATE, None, None, None, 20, 6.0)


def _harness(challenge: bool = True, passive_required: bool = False) -> Harness:
    return Harness(
        make_session(
            session=SessionConfig(passive_required=passive_required, pinless_without_ring=True),
            challenge=challenge,
        )
    )


def _refused_with(h: Harness, reason: Reason) -> None:
    assert h.state == "cooldown" and ev.StateChanged("match") not in h.effects
    assert not h.of(ev.WriteLedger) and not h.of(ev.RequestAuthorization)
    assert ev.Notify("liveness_rejected", (reason,)) in h.effects
    assert ev.StateChanged("declined", (reason,)) in h.effects


def test_binding_the_face_starts_a_fresh_challenge_code() -> None:
    """The code plays from the first good frame, while the customer steps up, not from
    the prompt; the match is asked with the prompt."""
    h = _harness()
    h.send(ev.FaceSeen, 1, True)
    (start,) = h.of(ev.StartChallenge)
    assert start.track_id == 1 and len(start.code) == 20 and start.bit_ms == 200
    assert any(start.code[:15]) and not all(start.code[:15])
    assert not h.of(ev.RequestMatch)
    h.to_intent()
    assert h.of(ev.StartChallenge) == [start] and h.of(ev.RequestMatch) == [ev.RequestMatch(1)]


def test_blink_passive_and_challenge_together_pay() -> None:
    h = _harness()
    h.to_intent()
    h.send(ev.PassiveSeen, 1, True)
    waiting = h.send(ev.BlinkDetected, 1)
    assert h.state == "intent"  # the challenge is still playing
    assert waiting == [ev.Prompt("Hold still")]
    h.send(ev.ChallengeDone, 1, PASSED)
    assert h.of(ev.RequestMatch) == [ev.RequestMatch(1)] and h.state == "match"


def test_the_challenge_passing_first_waits_for_the_blink() -> None:
    h = _harness()
    h.to_intent()
    h.send(ev.ChallengeDone, 1, PASSED)
    assert h.state == "intent"
    h.send(ev.BlinkDetected, 1)
    assert h.state == "match"


def test_a_replayed_blinking_video_fails_the_challenge() -> None:
    h = _harness()
    h.to_intent()
    h.send(ev.PassiveSeen, 1, True)  # a full-screen replay fools the passive cue
    h.send(ev.BlinkDetected, 1)
    h.send(ev.ChallengeDone, 1, NOT_FOLLOWED)
    _refused_with(h, Reason.CHALLENGE_FAILED)
    assert h.of(ev.StopChallenge) == []  # judged: the shell already stopped it


@pytest.mark.parametrize("blinked", [False, True])
def test_a_slow_camera_refuses_as_unavailable(blinked: bool) -> None:
    h = _harness()
    h.to_intent()
    if blinked:
        h.send(ev.BlinkDetected, 1)
    h.send(ev.ChallengeDone, 1, TOO_SLOW)
    _refused_with(h, Reason.CHALLENGE_UNAVAILABLE)


def test_no_challenge_answer_by_the_end_of_the_window_is_unavailable() -> None:
    h = _harness()
    h.to_intent()
    h.send(ev.BlinkDetected, 1)
    h.advance(SessionConfig().intent_timeout_s + 0.1)
    _refused_with(h, Reason.CHALLENGE_UNAVAILABLE)
    assert h.of(ev.StopChallenge) == [ev.StopChallenge()]


def test_no_blink_is_the_intent_timeout_and_stops_the_light() -> None:
    h = _harness()
    h.to_intent()
    h.send(ev.ChallengeDone, 1, PASSED)  # a print reflects the light: only the blink stops it
    h.advance(SessionConfig().intent_timeout_s + 0.1)
    assert ev.Notify("session_aborted", (Reason.INTENT_TIMEOUT,)) in h.effects
    assert ev.StateChanged("match") not in h.effects


@pytest.mark.parametrize(
    ("real", "spoof", "refused"), [(3, 0, False), (2, 1, False), (1, 1, True), (0, 2, True)]
)
def test_the_passive_majority_decides(real: int, spoof: int, refused: bool) -> None:
    h = _harness(challenge=False)
    h.to_intent()
    for verdict in [True] * real + [False] * spoof:
        h.send(ev.PassiveSeen, 1, verdict)
    h.send(ev.PassiveSeen, 2, False)  # another track's verdicts do not count
    h.send(ev.BlinkDetected, 1)
    if refused:
        _refused_with(h, Reason.REPLAY_SUSPECTED)
    else:
        assert h.state == "match"


def test_no_passive_verdict_refuses_only_when_required() -> None:
    lenient = _harness(challenge=False)
    lenient.to_match()
    assert lenient.state == "match"
    strict = _harness(challenge=False, passive_required=True)
    strict.to_match()
    _refused_with(strict, Reason.REPLAY_SUSPECTED)


def test_verdicts_of_an_earlier_attempt_do_not_carry_over() -> None:
    h = _harness(challenge=False)
    h.to_intent()
    h.send(ev.PassiveSeen, 1, False)
    h.send(ev.Cancel)
    h.to_intent(track=2)
    h.send(ev.PassiveSeen, 2, True)
    h.send(ev.BlinkDetected, 2)
    assert h.state == "match"


def test_a_stale_challenge_result_is_ignored() -> None:
    h = _harness()
    h.to_intent()
    h.send(ev.ChallengeDone, 7, NOT_FOLLOWED)  # another track's
    assert h.state == "intent"


def test_the_challenge_must_fit_the_intent_window() -> None:
    with pytest.raises(ValueError):
        Session(
            SessionConfig(intent_timeout_s=3.0),
            PaymentConfig(),
            "turnstile",
            new_tx_id=str,
            encrypt_pin=encrypt_pin,
            auth_timeout_s=2.5,
            relay_pulse_ms=300,
            passage_timeout_s=None,
            challenge=ChallengeConfig(),
            randbelow=lambda n: 0,
        )
