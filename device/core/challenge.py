"""The illumination challenge, pure: a fresh random on/off code for the challenge light,
and whether the light reflected by the face followed it.

The shell switches the light by the code, one bit every `bit_s` from `start`, and hands
over, per camera frame, the face region's and the background's luminance. A live face
beside the light brightens when it is on; the background, further away, hardly does;
a global change (auto-exposure, room light, a screen's own glow) scales both. So each
frame gives the log ratio face / background, each bit the mean over its frames, and the code is
decoded by calling the brighter half of the bits "on". The challenge passes only when
the decoded bits equal the code exactly, at one of the small camera lags tried.

Why exact decoding of a balanced code: the code is drawn uniformly among the
C(n, n/2) balanced codes after the attempt began, so ANY luminance sequence made
independently of it (a recorded video, a screen's glow, noise) decodes to the code with
probability at most 1 / C(n, n/2) per lag tried (docs/liveness.md has the numbers).
Nothing here reads a clock or does I/O; randomness comes in as a function.
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


def false_accept_bound(code_bits: int, max_lag_frames: int) -> float:
    """P(an independent luminance sequence passes) <= lags tried / C(n, n/2)."""
    return (max_lag_frames + 1) / math.comb(code_bits, code_bits // 2)


def make_code(bits: int, randbelow: RandBelow) -> tuple[bool, ...]:
    """A uniformly random balanced code (bits/2 on, bits/2 off): Fisher-Yates shuffle."""
    if bits < 2 or bits % 2:
        raise ValueError("a balanced code needs an even number of bits")
    code = [True] * (bits // 2) + [False] * (bits // 2)
    for i in range(bits - 1, 0, -1):
        j = randbelow(i + 1)
        if not 0 <= j <= i:
            raise ValueError("randbelow answered out of range")
        code[i], code[j] = code[j], code[i]
    return tuple(code)


def frame_interval(samples: Sequence[LightSample]) -> float | None:
    """The median time between frames (robust to one dropped frame); None under 2."""
    times = sorted(s.t for s in samples)
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(gaps) if gaps else None


def complete_at(start: float, cfg: ChallengeConfig, interval: float) -> float:
    """When the last bit has reached the camera, allowing the longest lag tried."""
    return start + cfg.duration_s + (cfg.max_lag_frames + 1) * interval


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


def _decode(
    means: Sequence[float], code: Sequence[bool], min_margin: float
) -> tuple[bool, float, float]:
    """Exact match of the brighter half with the code's on bits, by at least min_margin:
    the margin between the weakest on bit and the strongest off bit; and the mean
    contrast on minus off."""
    on = [m for m, bit in zip(means, code, strict=True) if bit]
    off = [m for m, bit in zip(means, code, strict=True) if not bit]
    margin = min(on) - max(off)
    return margin >= min_margin, margin, statistics.fmean(on) - statistics.fmean(off)


def judge(
    samples: Sequence[LightSample], code: Sequence[bool], start: float, cfg: ChallengeConfig
) -> ChallengeVerdict:
    """Did the face's light follow `code`, played from `start`, at any lag tried? The
    verdict is that of the lag with the widest margin (the camera's real delay)."""
    bits, bit_s = len(code), cfg.bit_ms / 1000.0
    measured = [s for s in samples if math.isfinite(s.face) and math.isfinite(s.background)]
    interval = frame_interval(measured)
    window = cfg.duration_s
    fps = 0.0 if interval is None else 1.0 / interval
    if interval is None or len(measured) < bits * cfg.min_frames_per_bit:
        covered = [s for s in measured if start <= s.t <= start + window]
        reason = ChallengeReason.NO_FACE if len(covered) < bits else ChallengeReason.FRAME_RATE
        return ChallengeVerdict(False, reason, None, None, None, len(measured), round(fps, 2))
    if fps < cfg.required_fps:  # a slow camera never passes a challenge by luck
        return ChallengeVerdict(
            False, ChallengeReason.FRAME_RATE, None, None, None, len(measured), round(fps, 2)
        )
    best: ChallengeVerdict | None = None
    for lag_frames in range(cfg.max_lag_frames + 1):
        per_bit = bit_contrasts(measured, start, bit_s, bits, lag_frames * interval, interval)
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
        )
        if best is None or margin > (best.margin if best.margin is not None else -math.inf):
            best = verdict
    if best is None:  # every lag left some bit without a clean frame
        return ChallengeVerdict(
            False, ChallengeReason.FRAME_RATE, None, None, None, len(measured), round(fps, 2)
        )
    return best
