"""The vision config section: defaults load, bad values are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from device.vision.config import VisionConfig


def test_defaults_are_valid() -> None:
    config = VisionConfig()
    assert config.threads >= 1 and not config.mesh_refine


@pytest.mark.parametrize(
    "values",
    [
        {"threads": 0},
        {"detector_min_score": 1.5},
        {"min_face_px": 5},
        {"min_brightness": 200.0, "max_brightness": 100.0},
        {"unknown_key": 1},
    ],
)
def test_bad_values_are_refused(values: dict) -> None:
    with pytest.raises(ValidationError):
        VisionConfig(**values)
