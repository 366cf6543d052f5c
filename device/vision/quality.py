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
