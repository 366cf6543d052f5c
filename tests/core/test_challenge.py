"""The illumination challenge's pure parts: random codes from injected randomness, the
sequential bit-by-bit decoding with camera lag, and refusals (never acceptances) when
frames are short."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from device.core.challenge import (
    ChallengeReason,
    LightSample,
    false_accept_bound,
    first_look,
    judge,
    look_bound,
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


def test_codes_are_fresh_independent_bits_from_the_injected_randomness() -> None:
    first = first_look(CFG)
    codes = {make_code(20, _randbelow(seed), first) for seed in range(200)}
    assert all(len(code) == 20 for code in codes)
    assert all(any(code[:first]) and not all(code[:first]) for code in codes)
    assert len(codes) > 195  # 2^20 possible: repeats are rare
    ones = sum(sum(code) for code in codes) / (200 * 20)
    assert 0.45 < ones < 0.55  # independent uniform bits, not balanced ones
    assert make_code(20, _randbelow(7), first) == make_code(20, _randbelow(7), first)
    with pytest.raises(ValueError):
        make_code(20, _randbelow(1), 21)
    with pytest.raises(ValueError):
        make_code(16, lambda n: n)  # a broken random source is refused, not trusted


def test_every_code_with_both_kinds_in_its_first_look_can_be_drawn() -> None:
    counter = itertools.count()
    seen = {make_code(4, _randbelow(next(counter)), 4) for _ in range(600)}
    assert len(seen) == 2**4 - 2  # all but 0000 and 1111


def test_the_sequential_bound_is_todays_or_better() -> None:
    """The looks from the first on, at every lag, together: at most 3 / C(16, 8), the bound
    of the fixed balanced 16-bit code judged once (docs/liveness.md derives both)."""
    assert first_look(CFG) == 15
    assert false_accept_bound(CFG) <= 3 / math.comb(16, 8)
    assert false_accept_bound(CFG) == pytest.approx(
        3 * sum(2.0 ** (15 - k) / (2**15 - 2) for k in range(15, 21))
    )
    assert look_bound(15, 15) == pytest.approx(1 / (2**15 - 2))
    with pytest.raises(ValueError):  # no look of an 8-bit code reaches 1 in 4290
        ChallengeConfig(code_bits=8)


@pytest.mark.parametrize("lag", [0, 1, 2])
def test_a_reflecting_face_follows_the_code_at_the_camera_lag(lag: int) -> None:
    code = make_code(20, _randbelow(lag + 3), first_look(CFG))
    frames = _frames(code, follow=8.0, lag_frames=lag)
    verdict = judge(frames, code, 10.0, CFG)
    assert verdict.passed and verdict.reason == ChallengeReason.FOLLOWED
    assert verdict.lag_frames == lag and verdict.margin > 0 and verdict.contrast > 0.05
    early = judge(frames, code, 10.0, CFG, bits=first_look(CFG))  # the first look suffices
    assert early.passed and early.bits == 15 and early.lag_frames == lag


def test_a_face_that_does_not_reflect_fails() -> None:
    code = make_code(20, _randbelow(1), 15)
    verdict = judge(_frames(code, follow=0.0), code, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.NOT_FOLLOWED


def test_a_recording_that_followed_another_code_fails() -> None:
    recorded = make_code(20, _randbelow(1), 15)
    fresh = make_code(20, _randbelow(2), 15)
    assert recorded != fresh
    verdict = judge(_frames(recorded, follow=8.0), fresh, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.NOT_FOLLOWED


def test_unrelated_sequences_pass_about_as_often_as_the_bound_says() -> None:
    """Random luminance against fresh codes, every look of the sequential test taken: the
    pass rate stays under the union bound (a small code, so the bound is measurable)."""
    rng = random.Random(5)
    cfg = ChallengeConfig(code_bits=8, false_accept_one_in=4)
    first = first_look(cfg)
    assert first is not None and first < 8
    passes, trials = 0, 1500
    for trial in range(trials):
        code = make_code(8, _randbelow(trial), first)
        samples = [
            LightSample(10 + i / FPS, rng.gauss(100, 5), 50.0)
            for i in range(int((8 * 0.2 + 0.5) * FPS))
        ]
        looks = (judge(samples, code, 10.0, cfg, bits=k) for k in range(first, 9))
        passes += any(verdict.passed for verdict in looks)
    bound = false_accept_bound(cfg)
    assert bound <= 1 / 4
    assert passes / trials <= bound * 1.3
    assert passes > 0  # the simulation can pass: the bound is not vacuous here


def test_a_slow_camera_makes_the_challenge_unavailable_never_passed() -> None:
    code = make_code(20, _randbelow(1), 15)
    slow = _frames(code, follow=8.0, fps=8.0)  # under the 10 fps two frames a bit need
    verdict = judge(slow, code, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.FRAME_RATE
    assert verdict.fps == pytest.approx(8.0, abs=0.1)


def test_no_face_measured_is_unavailable() -> None:
    code = make_code(20, _randbelow(1), 15)
    verdict = judge(_frames(code, follow=8.0)[:3], code, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.NO_FACE
    nan = [LightSample(s.t, math.nan, s.background) for s in _frames(code, 8.0)]
    assert judge(nan, code, 10.0, CFG).reason == ChallengeReason.NO_FACE


def test_config_bounds() -> None:
    assert CFG.duration_s == pytest.approx(4.0) and CFG.required_fps == pytest.approx(10.0)
    fast = ChallengeConfig(bit_ms=100)  # 30 fps cameras: 3 frames a bit
    assert fast.duration_s == pytest.approx(2.0) and fast.required_fps == pytest.approx(20.0)


def test_light_falling_evenly_on_the_whole_view_does_not_follow() -> None:
    """A print or a screen that fills the view: face and background brighten together."""
    code = make_code(20, _randbelow(4), 15)
    bit_s = CFG.bit_ms / 1000
    samples = []
    for i in range(int((20 * bit_s + 0.5) * FPS)):
        t = 10.0 + i / FPS
        index = math.floor((t - 1 / FPS - 10.0) / bit_s)
        lit = 1.15 if 0 <= index < 20 and code[index] else 1.0
        samples.append(LightSample(t, 120 * lit, 60 * lit))
    verdict = judge(samples, code, 10.0, CFG)
    assert not verdict.passed and verdict.reason == ChallengeReason.NOT_FOLLOWED
