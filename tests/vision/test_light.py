"""Face and background luminance for the illumination challenge."""

from __future__ import annotations

import math

import numpy as np

from device.vision.light import measure_light


def _frame(face: int, background: int) -> np.ndarray:
    rgb = np.full((240, 320, 3), background, np.uint8)
    rgb[80:160, 120:200] = face
    return rgb


def test_face_and_background_are_told_apart() -> None:
    light = measure_light(_frame(150, 40), (120, 80, 200, 160))
    assert light is not None and light.face == 150 and light.background == 40


def test_a_small_glint_does_not_move_the_face_median() -> None:
    rgb = _frame(150, 40)
    rgb[110:116, 150:156] = 255  # the light's reflection in a lens or a screen's glass
    light = measure_light(rgb, (120, 80, 200, 160))
    assert light is not None and light.face == 150


def test_edge_cases() -> None:
    assert measure_light(_frame(150, 40), (10, 10, 10, 10)) is None
    whole = measure_light(_frame(150, 40), (0, 0, 320, 240))
    assert whole is not None and math.isnan(whole.background)
