"""The int8 dlib embedder (vision.embedder = "dlib") and our alignment against dlib's own
pipeline on real LFW faces.

dlib (HOG detector, shape_predictor_5, get_face_chip, the ResNet descriptor; from the
`dlib-bin` and `face-recognition-models` packages of the parity extra, not of dev:
`.venv/bin/pip install -e .[parity]`) runs here, in the test, on a bounded subset of
pairsDevTest images read from ../shared/data. Nothing derived from those faces is stored
in the repository. Skipped without dlib or without the data.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from device.evaluation.embedding import central_face
from device.paths import REPO_ROOT
from device.vision.align import chip_matrix
from device.vision.config import VisionConfig
from device.vision.images import read_image
from device.vision.pipeline import FacePipeline

pytestmark = [pytest.mark.data, pytest.mark.parity]
FACES = 12  # a bounded subset keeps the suite fast


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    """The terminal's pipeline with dlib's embedder selected (MobileFaceNet is the default)."""
    return FacePipeline.from_config(VisionConfig(threads=1, embedder="dlib"))


@pytest.fixture(scope="module")
def dlib_faces(lfw_dir: Path) -> list[Any]:
    """dlib's own result (points, chip geometry, descriptor) on the first FACES faces."""
    pytest.importorskip(
        "dlib", reason="dlib-bin is not installed (the parity extra: pip install -e .[parity])"
    )
    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip(
            "face-recognition-models is not installed (the parity extra: pip install -e .[parity])"
        )
    sys.path.insert(0, str(REPO_ROOT / "models"))  # the build scripts' own dlib pipeline
    try:
        from face_chips import DlibPipeline, pair_images
    finally:
        sys.path.remove(str(REPO_ROOT / "models"))
    pipeline = DlibPipeline()
    faces = []
    for image in pair_images(lfw_dir / "pairsDevTest.txt"):
        face = pipeline.face(lfw_dir / "images", image)
        if face is not None:
            faces.append(face)
        if len(faces) == FACES:
            return faces
    pytest.fail(f"dlib found fewer than {FACES} faces in pairsDevTest")


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float64) / np.linalg.norm(v)


def test_int8_embedder_matches_dlib_on_dlib_chips(
    pipeline: Any, lfw_dir: Path, dlib_faces: list[Any]
) -> None:
    cosines = []
    for face in dlib_faces:
        rgb = read_image(lfw_dir / "images" / face.image)
        chip = cv2.warpAffine(
            rgb, face.chip_transform, (150, 150), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        ours = pipeline.embedder.embed(chip)
        cosines.append(float(ours @ _unit(face.descriptor)))
    assert min(cosines) >= 0.998, cosines


def test_our_chip_geometry_equals_dlibs(dlib_faces: list[Any]) -> None:
    for face in dlib_faces:
        ours = cv2.invertAffineTransform(chip_matrix(face.points, 150, 0.25))
        np.testing.assert_allclose(ours, face.chip_transform, atol=0.02)


def test_full_pipeline_tracks_dlibs_points_and_descriptor(
    pipeline: Any, lfw_dir: Path, dlib_faces: list[Any]
) -> None:
    errors, cosines = [], []
    for face in dlib_faces:
        rgb = read_image(lfw_dir / "images" / face.image)
        found = central_face(pipeline.process(rgb, 0.0, track=False, gate=False), rgb.shape)
        assert found is not None and found.embedding is not None, face.image
        dlib_points = face.points
        eye_distance = np.linalg.norm(dlib_points[0] - dlib_points[2])
        errors.append(np.linalg.norm(found.points5 - dlib_points, axis=1).mean() / eye_distance)
        cosines.append(float(found.embedding @ _unit(face.descriptor)))
    # mesh-predicted points within a few % of the eye distance of dlib's predictor;
    # the descriptor stays close to dlib's own (same person by a wide margin)
    assert float(np.mean(errors)) < 0.05, errors
    assert float(np.median(cosines)) > 0.97 and min(cosines) > 0.9, cosines
