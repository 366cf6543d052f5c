"""The blink scorer and the session together, on one simulated clock: only a real blink of
the bound face opens the match; a photo waits out the prompt and is refused."""

from __future__ import annotations

from types import SimpleNamespace

from device.core import events as ev
from device.core.config import LivenessConfig
from device.core.liveness import BLINKED, BlinkTracker
from device.core.reasons import Reason

FPS = 15.0


def _face(openness: float) -> SimpleNamespace:
    return SimpleNamespace(eyes=SimpleNamespace(right=openness, left=openness * 0.95))


def _present(h, openness_at, seconds: float, track: int = 1) -> None:
    """Frames of one tracked face: FaceSeen, the scorer's verdict, a Tick per frame."""
    tracker = BlinkTracker(LivenessConfig())
    for _ in range(int(seconds * FPS)):
        h.send(ev.FaceSeen, track, True)
        if tracker.observe(h.now, _face(openness_at(h.now))) == BLINKED:
            h.send(ev.BlinkDetected, track)
        h.advance(1 / FPS)


def test_a_blink_opens_the_match(turnstile) -> None:
    start = turnstile.now

    def blinking(t: float) -> float:
        return 0.08 if 1.5 <= t - start < 1.7 else 0.32

    _present(turnstile, blinking, 2.0)
    assert turnstile.of(ev.RequestMatch) == [ev.RequestMatch(1)]
    assert turnstile.state == "match"


def test_a_photo_never_reaches_the_match(turnstile) -> None:
    _present(turnstile, lambda t: 0.32, 7.0)  # longer than the intent timeout
    assert ev.StateChanged("match") not in turnstile.effects  # asked early, never used
    assert not turnstile.of(ev.WriteLedger) and not turnstile.of(ev.RequestAuthorization)
    assert ev.Notify("session_aborted", (Reason.INTENT_TIMEOUT,)) in turnstile.effects


def test_blink_before_the_prompt_does_not_count(turnstile) -> None:
    start = turnstile.now

    def early(t: float) -> float:  # blinks while the terminal is still checking the face
        return 0.08 if 0.5 <= t - start < 0.65 else 0.32

    tracker = BlinkTracker(LivenessConfig())
    for _ in range(int(1.0 * FPS)):  # frames before the session binds: IDLE ignores blinks
        if tracker.observe(turnstile.now, _face(early(turnstile.now))) == BLINKED:
            turnstile.send(ev.BlinkDetected, 1)
        turnstile.advance(1 / FPS)
    assert turnstile.state == "idle" and not turnstile.of(ev.RequestMatch)
