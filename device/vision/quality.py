"""Quality gate: is this face good enough to embed? Each failed check adds a reason."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.vision.config import VisionConfig


@dataclass(frozen=True)
class Quality:
    ok: bool
    reasons: tuple[str, ...]  # subset of: small, yaw, pitch, blur, dark, bright, no_landmarks
    face_px: float  # shorter side of the detector box, frame pixels
    yaw_deg: float
    pitch_deg: float
    sharpness: float  # variance of the Laplacian of the grey 150px chip
    brightness: float  # mean grey level of the chip's central half


def chip_sharpness(chip: np.ndarray) -> float:
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def chip_brightness(chip: np.ndarray) -> float:
    h, w = chip.shape[:2]
    centre = chip[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    return float(cv2.cvtColor(centre, cv2.COLOR_RGB2GRAY).mean())


def assess(
    config: VisionConfig,
    face_px: float,
    yaw: float,
    pitch: float,
    chip: np.ndarray,
    presence: float,
) -> Quality:
    sharpness = chip_sharpness(chip)
    brightness = chip_brightness(chip)
    checks = (
        ("no_landmarks", presence < 0.5),
        ("small", face_px < config.min_face_px),
        ("yaw", abs(yaw) > config.max_yaw_deg),
        ("pitch", abs(pitch) > config.max_pitch_deg),
        ("blur", sharpness < config.min_sharpness),
        ("dark", brightness < config.min_brightness),
        ("bright", brightness > config.max_brightness),
    )
    reasons = tuple(name for name, failed in checks if failed)
    return Quality(not reasons, reasons, face_px, yaw, pitch, sharpness, brightness)


# Fusion weights (device/shell/face_book.py): how much one frame's embedding counts in the
# track's template-like mean. Each factor is in [MIN_FACTOR, 1]: a frame that passed the
# gate always counts a little, and a good frame counts fully.
MIN_FACTOR = 0.1
SHARP_FULL_FACTOR = 3.0  # sharpness at 3x vision.min_sharpness counts fully
SIZE_FULL_FACTOR = 2.0  # a face 2x vision.min_face_px wide counts fully
OPEN_EYES_FULL = 0.25  # eye aspect ratio of open eyes (EyeOpenness: open mostly 0.25-0.40)


def _factor(value: float) -> float:
    return float(min(1.0, max(MIN_FACTOR, value)))


def fusion_weight(config: VisionConfig, quality: Quality, eyes_mean: float | None) -> float:
    """Weight of one embedding in a track's fused embedding: the product of a sharpness, a
    pose, a size and an eyes-open factor. Pose falls off with the squared fraction of the
    gate's yaw/pitch limits used; eyes count fully at OPEN_EYES_FULL (mid-blink and
    half-closed frames embed worse); without an eye measurement the eyes factor is 1."""
    sharp = _factor(quality.sharpness / max(config.min_sharpness * SHARP_FULL_FACTOR, 1e-6))
    yaw = quality.yaw_deg / config.max_yaw_deg
    pitch = quality.pitch_deg / config.max_pitch_deg
    pose = _factor(1.0 - (yaw * yaw + pitch * pitch) / 2.0)
    size = _factor(quality.face_px / (config.min_face_px * SIZE_FULL_FACTOR))
    eyes = 1.0 if eyes_mean is None else _factor(eyes_mean / OPEN_EYES_FULL)
    return sharp * pose * size * eyes
