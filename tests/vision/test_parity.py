"""The int8 embedder and our alignment against dlib's own pipeline on real LFW faces.

The dlib reference (5 points, chip geometry, descriptor) was recorded by
models/build_embedder.py into models/parity_reference.json; the images are read from
../shared/data at test time (skipped when absent).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.paths import default_models_dir
from device.vision.align import chip_matrix
from device.vision.evaluation import central_face
from device.vision.images import read_image

pytestmark = pytest.mark.data
FACES = 12  # a bounded subset keeps the suite fast


def _reference() -> dict:
    return json.loads((default_models_dir() / "parity_reference.json").read_text())


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float64) / np.linalg.norm(v)


def test_int8_embedder_matches_dlib_on_dlib_chips(pipeline, lfw_dir: Path) -> None:
    reference = _reference()
    assert reference["embedder_version"] == pipeline.embedder_version
    cosines = []
    for face in reference["faces"][:FACES]:
        rgb = read_image(lfw_dir / "images" / face["image"])
        chip = cv2.warpAffine(
            rgb,
            np.array(face["chip_to_image"]),
            (150, 150),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        )
        ours = pipeline.embedder.embed(chip)
        cosines.append(float(ours @ _unit(face["dlib_descriptor"])))
    assert min(cosines) >= 0.998, cosines


def test_our_chip_geometry_equals_dlibs(lfw_dir: Path) -> None:
    for face in _reference()["faces"][:FACES]:
        ours = cv2.invertAffineTransform(chip_matrix(np.array(face["points"]), 150, 0.25))
        np.testing.assert_allclose(ours, np.array(face["chip_to_image"]), atol=0.02)


def test_full_pipeline_tracks_dlibs_points_and_descriptor(pipeline, lfw_dir: Path) -> None:
    errors, cosines = [], []
    for face in _reference()["faces"][:FACES]:
        rgb = read_image(lfw_dir / "images" / face["image"])
        found = central_face(pipeline.process(rgb, 0.0, track=False, gate=False), rgb.shape)
        assert found is not None and found.embedding is not None, face["image"]
        dlib_points = np.array(face["points"])
        eye_distance = np.linalg.norm(dlib_points[0] - dlib_points[2])
        errors.append(np.linalg.norm(found.points5 - dlib_points, axis=1).mean() / eye_distance)
        cosines.append(float(found.embedding @ _unit(face["dlib_descriptor"])))
    # mesh-predicted points within a few % of the eye distance of dlib's predictor;
    # the descriptor stays close to dlib's own (same person by a wide margin)
    assert float(np.mean(errors)) < 0.05, errors
    assert float(np.median(cosines)) > 0.97 and min(cosines) > 0.9, cosines
