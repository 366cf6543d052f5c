"""The illumination challenge's pure parts: balanced codes from injected randomness, the
per-bit decoding with camera lag, and refusals (never acceptances) when frames are short."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from device.core.challenge import (
    ChallengeReason,
    LightSample,
    false_accept_bound,
    judge,
    make_code,
)
from device.core.config import ChallengeConfig

CFG = ChallengeConfig()
FPS = 15.0


def _randbelow(seed: int):
    rng = random.Random(seed)
    return lambda n: rng.randrange(n)


def _frames(code, follow, lag_frames=1, fps=FPS, noise=0.3, seed=0, start=10.0):
    """Frames of a face beside the light: the face brightens by `follow` grey levels while
    the light was on `lag_frames` frames before the frame's stamp; the camera's gain
    drifts over the whole picture."""
    rng = random.Random(seed)
    bit_s = CFG.bit_ms / 1000
    samples = []
    for i in range(int((len(code) * bit_s + 0.5) * fps)):
        t = start + i / fps
        seen = t - lag_frames / fps - start
        index = math.floor(seen / bit_s)
        on = 0 <= index < len(code) and code[index]
        gain = 1 + 0.05 * math.sin(t * 2.3)  # auto-exposure drift: scales the whole picture
        face = gain * (120 + (follow if on else 0.0)) + rng.gauss(0, noise)
        samples.append(LightSample(t, face, gain * 60 + rng.gauss(0, noise)))
    return samples


def test_codes_are_balanced_fresh_and_use_the_injected_randomness() -> None:
    codes = {make_code(16, _randbelow(seed)) for seed in range(200)}
    assert all(sum(code) == 8 and len(code) == 16 for code in codes)
    assert len(codes) > 190  # 12870 possible: repeats are rare
    assert make_code(16, _randbelow(7)) == make_code(16, _randbelow(7))
    with pytest.raises(ValueError):
        make_code(15, _randbelow(1))
    with pytest.raises(ValueError):
        make_code(16, lambda n: n)  # a broken random source is refused, not trusted


def test_every_balanced_code_can_be_drawn() -> None:
    counter = itertools.count()
    # an exhaustive random source: all shuffles of a 4-bit code reach all 6 balanced codes
    seen = {make_code(4, _randbelow(next(counter))) for _ in range(400)}
    assert len(seen) == math.comb(4, 2)


@pytest.mark.parametrize("lag", [0, 1, 2])
def test_a_reflecting_face_follows_the_code_at_the_camera_lag(lag: int) -> None:
    code = make_code(16, _randbelow(lag + 3))
    verdict = judge(_frames(code, follow=8.0, lag_frames=lag), code, 10.0, CFG)
    assert verdict.passed and verdict.reason == ChallengeReason.FOLLOWED
    assert verdict.lag_frames == lag and verdict.margin > 0 and verdict.contrast > 0.05


def test_a_face_that_does_not_reflect_fails() -> None:
    code = make_code(16, _randbelow(1))
    verdict = judge(_frames(code, follow=0.0), code, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.NOT_FOLLOWED


def test_a_recording_that_followed_another_code_fails() -> None:
    recorded = make_code(16, _randbelow(1))
    fresh = make_code(16, _randbelow(2))
    assert recorded != fresh
    verdict = judge(_frames(recorded, follow=8.0), fresh, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.NOT_FOLLOWED


def test_unrelated_sequences_pass_about_as_often_as_the_bound_says() -> None:
    """Random luminance against fresh codes: the pass rate stays near the union bound."""
    rng = random.Random(5)
    cfg = ChallengeConfig(code_bits=8)  # small code: the bound (3/70) is measurable here
    passes, trials = 0, 600
    for trial in range(trials):
        code = make_code(8, _randbelow(trial))
        samples = [
            LightSample(10 + i / FPS, rng.gauss(100, 5), 50.0)
            for i in range(int((8 * 0.2 + 0.5) * FPS))
        ]
        passes += judge(samples, code, 10.0, cfg).passed
    assert passes / trials <= false_accept_bound(8, cfg.max_lag_frames) * 1.6
    assert false_accept_bound(16, 2) == pytest.approx(3 / 12870)


def test_a_slow_camera_makes_the_challenge_unavailable_never_passed() -> None:
    code = make_code(16, _randbelow(1))
    slow = _frames(code, follow=8.0, fps=8.0)  # under the 10 fps two frames a bit need
    verdict = judge(slow, code, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.FRAME_RATE
    assert verdict.fps == pytest.approx(8.0, abs=0.1)


def test_no_face_measured_is_unavailable() -> None:
    code = make_code(16, _randbelow(1))
    verdict = judge(_frames(code, follow=8.0)[:3], code, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.NO_FACE
    nan = [LightSample(s.t, math.nan, s.background) for s in _frames(code, 8.0)]
    assert judge(nan, code, 10.0, CFG).reason == ChallengeReason.NO_FACE


def test_config_bounds() -> None:
    assert CFG.duration_s == pytest.approx(3.2) and CFG.required_fps == pytest.approx(10.0)
    with pytest.raises(ValueError):
        ChallengeConfig(code_bits=15)


def test_light_falling_evenly_on_the_whole_view_does_not_follow() -> None:
    """A print or a screen that fills the view: face and background brighten together."""
    code = make_code(16, _randbelow(4))
    bit_s = CFG.bit_ms / 1000
    samples = []
    for i in range(int((16 * bit_s + 0.5) * FPS)):
        t = 10.0 + i / FPS
        index = math.floor((t - 1 / FPS - 10.0) / bit_s)
        lit = 1.15 if 0 <= index < 16 and code[index] else 1.0
        samples.append(LightSample(t, 120 * lit, 60 * lit))
    verdict = judge(samples, code, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.NOT_FOLLOWED
