"""The illumination challenge, pure: a fresh random on/off code for the challenge light,
and whether the light reflected by the face followed it, judged bit by bit.

The shell switches the light by the code, one bit every `bit_s` from `start`, and hands
over, per camera frame, the face region's and the background's luminance. A live face
beside the light brightens when it is on; the background, further away, hardly does;
a global change (auto-exposure, room light, a screen's own glow) scales both. So each
frame gives the log ratio face / background, each bit the mean over its frames.

The code's bits are independent and uniform (the first `min_bits` never all equal), drawn
after the attempt began. A sequential test looks at the code once per bit from the first
look on (`first_look`): the bits so far are split into "on" and "off" by the largest
between-group variance of their means (a split that never reads the code), and the look
passes only when that split equals the code's bits exactly, by at least min_margin, at
one of the small camera lags tried. The first look that passes ends the code early.

Why this bounds a recording: ANY luminance sequence made independently of the code (a
recorded video, a screen's glow, noise) splits into a pattern that does not depend on the
code, so it equals the code's first k bits with probability at most q(k) = 2^-k scaled
by the redraw of constant prefixes; over every lag and every look (union bound) the false
accept is at most `false_accept_bound` (docs/liveness.md has the numbers). Nothing here
reads a clock or does I/O; randomness comes in as a function.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from device.core.config import ChallengeConfig

RandBelow = Callable[[int], int]  # n -> uniform integer in [0, n), e.g. secrets.randbelow


class ChallengeReason(StrEnum):
    FOLLOWED = "followed"  # the face's light followed the code
    NOT_FOLLOWED = "not_followed"  # it did not: a replay, a screen, or no reflection
    FRAME_RATE = "frame_rate"  # too few frames in some bit: the camera is too slow
    NO_FACE = "no_face"  # the face was measured in too few frames


@dataclass(frozen=True)
class LightSample:
    """One camera frame of the challenged face: luminance 0..255 of the face region and
    of the background around it (device.vision.light measures them)."""

    t: float
    face: float
    background: float

    @property
    def contrast(self) -> float:
        """ln(face / background): a change of gain that scales the whole picture (camera
        auto-exposure, a screen's brightness, light falling evenly on a print that fills
        the view) leaves it unchanged; light that reaches the near face more than the far
        background moves it (0.1 = the face 10 % brighter relative to the background)."""
        return math.log(max(self.face, 1.0) / max(self.background, 1.0))


@dataclass(frozen=True)
class ChallengeVerdict:
    passed: bool
    reason: ChallengeReason
    lag_frames: int | None  # the lag that decoded (or came closest); None: none scored
    margin: float | None  # weakest "on" bit minus strongest "off" bit (log ratio units)
    contrast: float | None  # mean "on" bits minus mean "off" bits, as coded (log ratio)
    frames: int  # frames measured
    fps: float  # frame rate measured from those frames
    bits: int = 0  # the code's bits this look judged (the test may end before the last)


def look_bound(bits: int, min_bits: int) -> float:
    """max over patterns p of P(the code's first `bits` bits = p): uniform bits, the
    first min_bits redrawn while they are all equal (2^min_bits - 2 prefixes left)."""
    return 2.0 ** (min_bits - bits) / (2.0**min_bits - 2.0)


def sequential_bound(first: int, code_bits: int, min_bits: int, lags: int) -> float:
    """P(an independent luminance sequence passes some look k = first..code_bits at some
    lag) <= sum over looks and lags of look_bound (union bound)."""
    return sum(lags * look_bound(k, min_bits) for k in range(first, code_bits + 1))


def first_look(cfg: ChallengeConfig) -> int | None:
    """The fewest bits the test may pass on: the smallest k whose looks k..code_bits
    together keep a recording's false accept at most 1 / false_accept_one_in (the first
    k bits are the ones redrawn when constant). None: no k fits this code length."""
    lags = cfg.max_lag_frames + 1
    target = 1.0 / cfg.false_accept_one_in
    for k in range(2, cfg.code_bits + 1):
        if sequential_bound(k, cfg.code_bits, k, lags) <= target:
            return k
    return None


def false_accept_bound(cfg: ChallengeConfig) -> float:
    """The configured test's bound on a recording's false accept, over all its looks."""
    first = first_look(cfg)
    if first is None:
        return 1.0
    return sequential_bound(first, cfg.code_bits, first, cfg.max_lag_frames + 1)


def make_code(bits: int, randbelow: RandBelow, min_bits: int | None = None) -> tuple[bool, ...]:
    """Independent uniform bits; the first `min_bits` (all by default) are drawn again
    while they are all on or all off, so the first look has both kinds to split."""
    head = bits if min_bits is None else min_bits
    if bits < 2 or not 2 <= head <= bits:
        raise ValueError("a code needs at least 2 bits, and its first look at most all")
    while True:
        code = []
        for _ in range(bits):
            bit = randbelow(2)
            if bit not in (0, 1):
                raise ValueError("randbelow answered out of range")
            code.append(bool(bit))
        if any(code[:head]) and not all(code[:head]):
            return tuple(code)


def frame_interval(samples: Sequence[LightSample]) -> float | None:
    """The median time between frames (robust to one dropped frame); None under 2."""
    times = sorted(s.t for s in samples)
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(gaps) if gaps else None


def complete_at(start: float, cfg: ChallengeConfig, interval: float, bits: int) -> float:
    """When the first `bits` bits have reached the camera, allowing the longest lag tried."""
    return start + bits * cfg.bit_ms / 1000.0 + (cfg.max_lag_frames + 1) * interval


def bit_contrasts(
    samples: Sequence[LightSample], start: float, bit_s: float, bits: int, lag: float, guard: float
) -> list[list[float]]:
    """Per bit, the face-to-background contrast of the frames wholly inside it: a frame stamped
    t saw the light during about [t - lag - guard, t - lag]; one that straddles a switch
    of the light is left out."""
    per_bit: list[list[float]] = [[] for _ in range(bits)]
    for sample in samples:
        seen = sample.t - lag - start
        index = math.floor(seen / bit_s)
        if 0 <= index < bits and seen - guard >= index * bit_s - 1e-9:
            per_bit[index].append(sample.contrast)
    return per_bit


def split(means: Sequence[float]) -> tuple[tuple[bool, ...], float]:
    """Two groups by the largest between-group variance (Otsu on the sorted means), and
    the gap between them: the pattern depends on the light alone, never on the code."""
    order = sorted(means)
    best, cut = -1.0, 1
    for i in range(1, len(order)):
        low, high = order[:i], order[i:]
        spread = len(low) * len(high) * (statistics.fmean(high) - statistics.fmean(low)) ** 2
        if spread > best:
            best, cut = spread, i
    threshold = (order[cut - 1] + order[cut]) / 2.0
    return tuple(m > threshold for m in means), order[cut] - order[cut - 1]


def _decode(
    means: Sequence[float], code: Sequence[bool], min_margin: float
) -> tuple[bool, float, float]:
    """The split equals the code's bits, and the weakest on bit beats the strongest off bit
    by at least min_margin; returns that margin (as coded: negative when the light did not
    follow) and the mean contrast on minus off."""
    on = [m for m, bit in zip(means, code, strict=True) if bit]
    off = [m for m, bit in zip(means, code, strict=True) if not bit]
    if not on or not off:  # a look before the first has nothing to split
        return False, 0.0, 0.0
    margin = min(on) - max(off)
    decoded, _ = split(means)
    passed = decoded == tuple(code) and margin >= min_margin
    return passed, margin, statistics.fmean(on) - statistics.fmean(off)


def judge(
    samples: Sequence[LightSample],
    code: Sequence[bool],
    start: float,
    cfg: ChallengeConfig,
    bits: int | None = None,
) -> ChallengeVerdict:
    """One look: did the face's light follow the code's first `bits` bits (all by default),
    played from `start`, at any lag tried? The verdict is that of the passing lag, else of
    the lag with the widest margin (the camera's real delay)."""
    code = tuple(code[: len(code) if bits is None else bits])
    n, bit_s = len(code), cfg.bit_ms / 1000.0
    measured = [s for s in samples if math.isfinite(s.face) and math.isfinite(s.background)]
    interval = frame_interval(measured)
    fps = 0.0 if interval is None else 1.0 / interval

    def unavailable(reason: ChallengeReason) -> ChallengeVerdict:
        return ChallengeVerdict(False, reason, None, None, None, len(measured), round(fps, 2), n)

    if interval is None or len(measured) < n * cfg.min_frames_per_bit:
        covered = [s for s in measured if start <= s.t <= start + n * bit_s]
        return unavailable(
            ChallengeReason.NO_FACE if len(covered) < n else ChallengeReason.FRAME_RATE
        )
    if fps < cfg.required_fps:  # a slow camera never passes a challenge by luck
        return unavailable(ChallengeReason.FRAME_RATE)
    best: ChallengeVerdict | None = None
    for lag_frames in range(cfg.max_lag_frames + 1):
        per_bit = bit_contrasts(measured, start, bit_s, n, lag_frames * interval, interval)
        if min(len(frames) for frames in per_bit) < cfg.min_frames_per_bit:
            continue
        means = [statistics.fmean(f) for f in per_bit]
        passed, margin, contrast = _decode(means, code, cfg.min_margin)
        verdict = ChallengeVerdict(
            passed,
            ChallengeReason.FOLLOWED if passed else ChallengeReason.NOT_FOLLOWED,
            lag_frames,
            round(margin, 4),
            round(contrast, 4),
            len(measured),
            round(fps, 2),
            n,
        )
        if best is None or (verdict.passed, margin) > (best.passed, best.margin or -math.inf):
            best = verdict
    if best is None:  # every lag left some bit without a clean frame
        return unavailable(ChallengeReason.FRAME_RATE)
    return best
