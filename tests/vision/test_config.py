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


def test_match_defaults_follow_the_selected_embedder() -> None:
    from device.config import Config
    from device.core.match import CALIBRATED

    for name in ("mobilefacenet", "dlib"):
        config = Config.model_validate({"vision": {"embedder": name}})
        for key, value in CALIBRATED[name].items():
            assert getattr(config.match, key) == value, (name, key)
    assert Config().match.threshold == CALIBRATED["mobilefacenet"]["threshold"]
    # a key given in the file wins, the others still come from the embedder's row
    mixed = Config.model_validate({"vision": {"embedder": "dlib"}, "match": {"margin": 0.03}})
    assert (mixed.match.margin, mixed.match.threshold) == (0.03, CALIBRATED["dlib"]["threshold"])
