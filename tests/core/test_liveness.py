"""Blink liveness on eye-openness series: blinks at real frame rates, and everything that
must not pass (still faces, winks, slow closing, noise, gaps, no face)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.core.config import LivenessConfig
from device.core.liveness import (
    BLINKED,
    BlinkTracker,
    EyeSample,
    LivenessReason,
    LivenessVerdict,
    score_series,
)

CFG = LivenessConfig()
OPEN_R, OPEN_L = 0.34, 0.31  # typical open eye aspect ratios, the two eyes differ a bit

Profile = Callable[[float], float]  # time -> fraction of the open level


def open_always(_t: float) -> float:
    return 1.0


def closed_between(start: float, end: float, level: float = 0.25) -> Profile:
    """Eyes at `level` x open level from start to end (exclusive), open otherwise."""
    return lambda t: level if start <= t < end else 1.0


def clip(
    fps: float,
    seconds: float,
    right: Profile = open_always,
    left: Profile = open_always,
    noise: float = 0.0,
    seed: int = 0,
) -> list[EyeSample]:
    rng = random.Random(seed)
    out = []
    for i in range(int(seconds * fps)):
        t = 10.0 + i / fps
        r = OPEN_R * right(t - 10.0) * (1 + rng.uniform(-noise, noise))
        lo = OPEN_L * left(t - 10.0) * (1 + rng.uniform(-noise, noise))
        out.append(EyeSample(t, r, lo))
    return out


# ------------------------------------------------------------------ live


@pytest.mark.parametrize("fps", [15.0, 25.0, 30.0, 60.0])
def test_a_150ms_blink_is_seen_at_common_frame_rates(fps: float) -> None:
    blink = closed_between(1.0, 1.15)
    result = score_series(clip(fps, 3.0, blink, blink, noise=0.03), CFG)
    assert result.live and result.reason == LivenessReason.BLINK
    assert len(result.blinks) == 1
    found = result.blinks[0]
    # timed from the last open frame before to the first open frame after: within a frame
    assert found.start == pytest.approx(11.0, abs=1.01 / fps)
    assert 150 <= found.duration_ms <= 150 + 2000 / fps
    assert 0.6 < result.score <= 0.8 and found.depth == pytest.approx(result.score)


def test_two_blinks_are_both_counted() -> None:
    def twice(t: float) -> float:
        return 0.2 if 0.5 <= t < 0.65 or 1.8 <= t < 2.0 else 1.0

    result = score_series(clip(25.0, 3.0, twice, twice), CFG)
    assert len(result.blinks) == 2 and result.live


def test_baseline_is_per_eye() -> None:
    # one eye naturally much narrower than the other (ptosis): both still blink
    def narrow(t: float) -> float:
        return 0.5 * closed_between(1.0, 1.2)(t)

    result = score_series(clip(25.0, 2.5, closed_between(1.0, 1.2), narrow), CFG)
    assert result.live


def test_missing_frame_inside_a_blink_is_tolerated() -> None:
    samples = clip(25.0, 2.0, closed_between(1.0, 1.16), closed_between(1.0, 1.16))
    # the detector lost the face for one frame while the eyes were shut
    samples[26] = EyeSample(samples[26].t, None, None)
    assert score_series(samples, CFG).live


def test_observe_speaks_the_shell_protocol() -> None:
    tracker = BlinkTracker(CFG)
    verdicts = []
    shut = closed_between(0.98, 1.1)  # frames 25..27 (edges between frames)
    for s in clip(25.0, 2.0, shut, shut):
        face = SimpleNamespace(eyes=SimpleNamespace(right=s.right, left=s.left))
        verdicts.append(tracker.observe(s.t, face))
    assert verdicts.count(BLINKED) == 1 and set(verdicts) == {None, BLINKED}
    # the verdict comes on the first reopened frame
    assert verdicts.index(BLINKED) == 28
    assert tracker.verdict() == LivenessVerdict(True, LivenessReason.BLINK)


def test_verdict_names_why_a_face_has_not_shown_liveness() -> None:
    still = BlinkTracker(CFG)
    for s in clip(25.0, 2.0):
        still.update(s.t, s.right, s.left)
    assert still.verdict() == LivenessVerdict(False, LivenessReason.NO_BLINK)
    assert BlinkTracker(CFG).verdict() == LivenessVerdict(False, LivenessReason.NO_FACE)


# ------------------------------------------------------------------ refused


def test_still_face_with_landmark_jitter_is_no_blink() -> None:
    result = score_series(clip(15.0, 4.0, noise=0.08, seed=3), CFG)
    assert not result.live and result.reason == LivenessReason.NO_BLINK
    assert result.score < 0.2 and result.frames == 60


def test_wink_is_not_a_blink() -> None:
    result = score_series(clip(25.0, 3.0, closed_between(1.0, 1.2, 0.1), open_always), CFG)
    assert not result.live and result.reason == LivenessReason.WINK
    assert dict(result.episodes) == {LivenessReason.WINK: 1}


def test_single_noisy_frame_on_one_eye_is_not_a_blink() -> None:
    samples = clip(25.0, 2.0)
    samples[30] = EyeSample(samples[30].t, 0.02, OPEN_L)
    assert not score_series(samples, CFG).live


def test_squint_that_never_closes_is_no_blink() -> None:
    squint = closed_between(1.0, 1.3, 0.7)  # under reopen_ratio, over closed_ratio
    result = score_series(clip(25.0, 2.5, squint, squint), CFG)
    assert not result.live and result.reason == LivenessReason.NO_BLINK
    assert result.score == pytest.approx(0.3, abs=0.01)


def test_eyes_closed_too_long_is_not_a_blink() -> None:
    shut = closed_between(1.0, 1.8)  # 800 ms > blink_max_ms
    result = score_series(clip(25.0, 3.0, shut, shut), CFG)
    assert not result.live and result.reason == LivenessReason.BLINK_TOO_SLOW


def test_closure_faster_than_a_human_blink_is_refused() -> None:
    flick = closed_between(1.0, 1.02)  # one 100 fps frame: 20 ms closed
    result = score_series(clip(100.0, 2.0, flick, flick), CFG)
    assert not result.live and result.reason == LivenessReason.BLINK_TOO_FAST


def test_closure_longer_than_the_baseline_window_relearns() -> None:
    cfg = LivenessConfig(baseline_window_s=1.0)
    shut = closed_between(1.0, 2.5, 0.2)

    def blink_after(t: float) -> float:
        return shut(t) if t < 3.0 else closed_between(3.5, 3.65)(t)

    result = score_series(clip(25.0, 4.5, blink_after, blink_after), cfg)
    # the long closure is refused, the open level is learnt again, the later blink counts
    assert dict(result.episodes)[LivenessReason.BLINK_TOO_SLOW] == 1
    assert result.live and len(result.blinks) == 1 and result.blinks[0].start > 13.0


def test_gradual_narrowing_over_the_window_is_not_counted_as_slow_blink() -> None:
    cfg = LivenessConfig(baseline_window_s=1.0)
    narrow = closed_between(1.0, 3.0, 0.7)
    result = score_series(clip(25.0, 4.0, narrow, narrow), cfg)
    assert not result.live and result.reason == LivenessReason.NO_BLINK


def test_frame_gap_inside_the_closure_cannot_time_a_blink() -> None:
    samples = clip(25.0, 2.0, closed_between(0.98, 1.3), closed_between(0.98, 1.3))
    # frames 26..31 dropped: 280 ms (> max_frame_gap_ms) without a measurement, eyes shut
    samples = [s for i, s in enumerate(samples) if not 26 <= i <= 31]
    result = score_series(samples, CFG)
    assert not result.live and result.reason == LivenessReason.FRAME_GAP


def test_frame_gap_just_before_the_closure_cannot_time_it() -> None:
    samples = clip(25.0, 2.0, closed_between(1.0, 1.1), closed_between(1.0, 1.1))
    samples = [s for i, s in enumerate(samples) if not 19 <= i <= 24]  # gap, then shut
    result = score_series(samples, CFG)
    assert not result.live


def test_gap_without_closure_is_harmless() -> None:
    samples = clip(25.0, 3.0, closed_between(2.0, 2.15), closed_between(2.0, 2.15))
    samples = [s for i, s in enumerate(samples) if not 10 <= i <= 20]
    assert score_series(samples, CFG).live


def test_gap_inside_a_shallow_dip_is_ignored() -> None:
    squint = closed_between(1.0, 1.6, 0.7)
    samples = [s for i, s in enumerate(clip(25.0, 2.5, squint, squint)) if not 28 <= i <= 34]
    result = score_series(samples, CFG)
    assert not result.live and result.reason == LivenessReason.NO_BLINK


def test_no_face_is_refused_as_no_face() -> None:
    samples = [EyeSample(10 + i / 15, None, None) for i in range(45)]
    result = score_series(samples, CFG)
    assert not result.live and result.reason == LivenessReason.NO_FACE and result.frames == 0
    assert score_series([], CFG).reason == LivenessReason.NO_FACE


def test_eyes_shut_throughout_has_no_baseline() -> None:
    shut = closed_between(0.0, 10.0, 0.2)  # 0.068: under min_open_openness
    result = score_series(clip(15.0, 3.0, shut, shut), CFG)
    assert not result.live and result.reason == LivenessReason.EYES_CLOSED


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.1, 5.0])
def test_impossible_openness_counts_as_not_measured(bad: float) -> None:
    samples = clip(25.0, 2.0)
    samples[30] = EyeSample(samples[30].t, bad, bad)
    result = score_series(samples, CFG)
    assert not result.live and result.frames == 49


def test_out_of_order_and_repeated_timestamps_are_ignored() -> None:
    tracker = BlinkTracker(CFG)
    for s in clip(25.0, 1.0):
        tracker.update(s.t, s.right, s.left)
    frames = tracker.result().frames
    assert tracker.update(10.5, 0.01, 0.01) is None  # earlier than the last frame
    assert tracker.update(math.nan, 0.01, 0.01) is None
    assert tracker.result().frames == frames


def test_short_capture_is_no_face() -> None:
    result = score_series(clip(25.0, 0.1), CFG)  # 2 frames: no baseline yet
    assert result.reason == LivenessReason.NO_FACE


def test_refusal_reason_prefers_the_most_telling_episode() -> None:
    def wink_then_slow(t: float) -> float:
        return 0.1 if 0.5 <= t < 0.7 or 1.5 <= t < 2.3 else 1.0

    def slow_only(t: float) -> float:
        return 0.1 if 1.5 <= t < 2.3 else 1.0

    result = score_series(clip(25.0, 3.0, wink_then_slow, slow_only), CFG)
    assert dict(result.episodes) == {
        LivenessReason.WINK: 1,
        LivenessReason.BLINK_TOO_SLOW: 1,
    }
    assert result.reason == LivenessReason.BLINK_TOO_SLOW


@settings(max_examples=60, deadline=None)
@given(
    fps=st.sampled_from([10.0, 15.0, 25.0, 30.0]),
    noise=st.floats(0.0, 0.15),
    seed=st.integers(0, 10_000),
    drift=st.floats(-0.1, 0.1),
)
def test_a_still_face_never_blinks(fps: float, noise: float, seed: int, drift: float) -> None:
    """Property: an unmoving face (jitter up to +-15 %, slow drift of the open level as
    the photo is tilted) is never a blink, whatever the frame rate."""

    def drifting(t: float) -> float:
        return 1.0 + drift * t / 4.0

    samples = clip(fps, 4.0, drifting, drifting, noise=noise, seed=seed)
    assert not score_series(samples, CFG).live


def test_a_long_lived_track_keeps_only_its_latest_blinks() -> None:
    def every_second(t: float) -> float:
        return 0.2 if 0.5 <= t % 1.0 < 0.65 else 1.0

    result = score_series(clip(25.0, 100.0, every_second, every_second), CFG)
    assert result.live and len(result.blinks) == 64
    assert result.blinks[-1].start > 108.0  # the latest ones
