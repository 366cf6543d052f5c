"""Passive anti-spoofing cue: Minivision's MiniFASNet pair (Silent-Face-Anti-Spoofing).

Each of the two models sees an 80x80 BGR crop of the face box scaled around its centre
(2.7x for MiniFASNetV2, 4.0x for MiniFASNetV1SE; the scale is each model's manifest
`context_scale`), so it sees the context around the face where a phone bezel, a paper
edge or moire shows. Pixels go in as raw 0..255 values: the publisher's ToTensor does not
divide by 255. Each model gives a 3-class softmax, class 1 = real face, 0 and 2 = two
kinds of attack; the publisher sums the two softmaxes and calls the face real when class 1
has the largest sum (argmax). This is one cue among several: it is not trained on this
terminal's camera and must not decide a payment alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from device.vision.models import Manifest, ModelError, load_model
from device.vision.runtime import dequantise, quantise

PASSIVE_ROLES = ("passive_v2", "passive_v1se")
REAL_CLASS = 1
NUM_CLASSES = 3

Verdict = Literal["real", "spoof", "no_verdict"]
# The crop must show at least as much context as face (area ratio 2, so scale sqrt 2): below
# that the crop is the tight face the models were not trained on (docs/liveness.md).
MIN_CONTEXT_SCALE = math.sqrt(2.0)


def context_box(
    box: tuple[float, float, float, float], scale: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """The publisher's crop geometry: the face box (x0, y0, x1, y1) scaled by `scale`
    around its centre, the scale first reduced so the crop fits the image, then the crop
    shifted (not clipped) back inside it. Returns inclusive pixel bounds (left, top,
    right, bottom); a crop keeps its context instead of shrinking at the border."""
    x0, y0, x1, y1 = box
    box_w, box_h = x1 - x0, y1 - y0
    if box_w <= 0 or box_h <= 0 or width < 2 or height < 2:
        raise ValueError(f"empty face box {box} or image {width}x{height}")
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    half_w, half_h = box_w * scale / 2, box_h * scale / 2
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    left, right = centre_x - half_w, centre_x + half_w
    top, bottom = centre_y - half_h, centre_y + half_h
    if left < 0:
        right, left = right - left, 0.0
    if top < 0:
        bottom, top = bottom - top, 0.0
    if right > width - 1:
        left, right = left - (right - width + 1), float(width - 1)
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), float(height - 1)
    # int() truncates towards zero as the publisher's crop does
    return int(left), int(top), int(right), int(bottom)


def context_room(box: tuple[float, float, float, float], width: int, height: int) -> float:
    """The largest scale of the face box that the image can hold (1.0: the face fills it)."""
    x0, y0, x1, y1 = box
    box_w, box_h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
    return min((height - 1) / box_h, (width - 1) / box_w)


def context_crop(
    rgb: np.ndarray, box: tuple[float, float, float, float], scale: float, size: tuple[int, int]
) -> np.ndarray:
    """The model's input crop: BGR uint8 (size[1], size[0], 3) from an RGB frame."""
    height, width = rgb.shape[:2]
    left, top, right, bottom = context_box(box, scale, width, height)
    patch = rgb[top : bottom + 1, left : right + 1]
    resized = cv2.resize(patch, size, interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized[:, :, ::-1])  # the models were trained on BGR


@dataclass(frozen=True)
class ModelScores:
    """One model's softmax over (attack, real, attack) on its own context crop."""

    role: str
    context_scale: float
    probabilities: tuple[float, float, float]

    @property
    def real(self) -> float:
        return self.probabilities[REAL_CLASS]


@dataclass(frozen=True)
class PassiveScore:
    """The passive cue for one face in one frame.

    real_probability is the models' mean class-1 probability (0..1); None with no verdict.
    verdict "no_verdict" when the face detection was too weak to place the crops (the
    models were not run): never read that as real."""

    verdict: Verdict
    real_probability: float | None
    models: tuple[ModelScores, ...]
    detection_score: float
    timestamp: float

    @property
    def is_real(self) -> bool:
        return self.verdict == "real"


class ContextModel:
    """One MiniFASNet: its manifest entry, its crop scale and its loaded TFLite model."""

    def __init__(self, manifest: Manifest, role: str, threads: int) -> None:
        self.entry, self.model = load_model(manifest, role, threads)
        self.role = role
        try:
            self.context_scale = float(self.entry.raw["context_scale"])
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"{self.entry.path.name}: manifest lacks context_scale") from None
        if not math.isfinite(self.context_scale) or self.context_scale <= 0:
            raise ModelError(f"{self.entry.path.name}: bad context_scale {self.context_scale}")
        if self.entry.input_range() not in (None, (0.0, 255.0)):
            raise ModelError(f"{self.entry.path.name}: expected raw 0..255 BGR input")
        _, height, width, _ = self.entry.input_shape
        self.size = (width, height)
        self._output = self.model.output_by_size(NUM_CLASSES)

    def crop(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        return context_crop(rgb, box, self.context_scale, self.size)

    def probabilities(self, bgr_crop: np.ndarray) -> tuple[float, float, float]:
        tensor = quantise(bgr_crop.astype(np.float32)[None], self.model.inputs[0])
        raw = self.model.run(tensor)[self._output.index]
        probs = dequantise(raw, self._output).ravel().astype(np.float64)
        probs = np.clip(probs, 0.0, None)
        probs /= max(float(probs.sum()), 1e-9)  # int8 softmax sums to 1 only within a step
        return (float(probs[0]), float(probs[1]), float(probs[2]))

    def score(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> ModelScores:
        return ModelScores(self.role, self.context_scale, self.probabilities(self.crop(rgb, box)))


def decide(models: tuple[ModelScores, ...], threshold: float | None) -> tuple[Verdict, float]:
    """Verdict and mean real probability. threshold None: the publisher's rule, real when
    class 1 has the largest summed softmax; else real when the mean real probability
    reaches the threshold."""
    summed = np.sum([m.probabilities for m in models], axis=0)
    real_probability = float(summed[REAL_CLASS] / len(models))
    if threshold is None:
        is_real = int(np.argmax(summed)) == REAL_CLASS
    else:
        is_real = real_probability >= threshold
    return ("real" if is_real else "spoof"), real_probability


class PassiveCue:
    """Both models, the detection-confidence gate and the decision rule."""

    def __init__(
        self,
        manifest: Manifest,
        threads: int,
        *,
        min_detection_score: float,
        threshold: float | None = None,
        min_context_scale: float = MIN_CONTEXT_SCALE,
    ) -> None:
        self.models = [ContextModel(manifest, role, threads) for role in PASSIVE_ROLES]
        self.min_detection_score = min_detection_score
        self.threshold = threshold
        self.min_context_scale = min_context_scale

    @property
    def versions(self) -> dict[str, str]:
        return {m.role: m.entry.version for m in self.models}

    def score(
        self,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        detection_score: float,
        timestamp: float = 0.0,
    ) -> PassiveScore:
        """The cue for the face in `box` of an RGB uint8 frame. A detection below
        min_detection_score gives no verdict: a misplaced box makes misplaced crops."""
        if not detection_score >= self.min_detection_score:  # also refuses NaN
            return PassiveScore("no_verdict", None, (), detection_score, timestamp)
        if context_room(box, rgb.shape[1], rgb.shape[0]) < self.min_context_scale:
            # A face that fills the frame leaves the models no context to judge (they were
            # trained on 2.7x / 4x crops): an unknown, never a "spoof" nor a "real".
            return PassiveScore("no_verdict", None, (), detection_score, timestamp)
        scores = tuple(m.score(rgb, box) for m in self.models)
        verdict, real_probability = decide(scores, self.threshold)
        return PassiveScore(verdict, real_probability, scores, detection_score, timestamp)
