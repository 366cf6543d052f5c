"""The shipped embedders: selection by vision.embedder, ArcFace alignment, face + mirror,
quality weights for fusion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from device.vision.align import (
    ARCFACE_FROM_MESH,
    ARCFACE_TEMPLATE_112,
    arcface5_from_mesh,
    arcface_matrix,
)
from device.vision.config import VisionConfig
from device.vision.embedder import FaceEmbedder
from device.vision.images import read_image
from device.vision.models import ModelError, load_manifest
from device.vision.pipeline import FacePipeline
from device.vision.quality import Quality, fusion_weight


def test_embedder_key_is_validated_and_mobilefacenet_is_the_default() -> None:
    assert VisionConfig().embedder == "mobilefacenet"
    assert VisionConfig(embedder="dlib").embedder == "dlib"
    with pytest.raises(ValidationError, match="embedder"):
        VisionConfig(embedder="edgeface")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="unknown embedder"):
        FaceEmbedder(load_manifest(), 1, "edgeface")


def _mesh_with(points5: np.ndarray) -> np.ndarray:
    """A 468-point mesh whose ArcFace points are exactly points5."""
    mesh = np.zeros((468, 3))
    for part, indices in enumerate(ARCFACE_FROM_MESH):
        mesh[list(indices), :2] = points5[part]
    return mesh


def test_arcface_alignment_maps_the_five_points_onto_the_template() -> None:
    angle, scale, shift = np.radians(12.0), 2.7, np.array([310.0, 95.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    face = ARCFACE_TEMPLATE_112 @ rot.T + shift  # the template, turned, scaled, moved
    points = arcface5_from_mesh(_mesh_with(face))
    np.testing.assert_allclose(points, face, atol=1e-9)
    matrix = arcface_matrix(points)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE_112, atol=1e-6)


@pytest.fixture(scope="module")
def embedders() -> dict[str, FaceEmbedder]:
    manifest = load_manifest()
    return {name: FaceEmbedder(manifest, 1, name) for name in ("mobilefacenet", "dlib")}


def test_both_shipped_embedders_load_with_their_own_version_and_size(embedders) -> None:
    mfn, dlib = embedders["mobilefacenet"], embedders["dlib"]
    assert (mfn.dim, mfn.chip_size, mfn.alignment, mfn.mirror) == (192, 112, "arcface-5point", True)
    assert (dlib.dim, dlib.chip_size, dlib.mirror) == (128, 150, False)
    assert mfn.version.startswith("mobilefacenet-") and dlib.version.startswith("dlib-")
    assert mfn.same_person_min < dlib.same_person_min


def test_face_and_mirror_run_together_and_are_summed(embedders) -> None:
    mfn = embedders["mobilefacenet"]
    chip = np.random.default_rng(3).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    chip[:, :40] //= 3  # not symmetric: the mirror image is a different input
    vector = mfn.embed(chip)
    assert vector.shape == (192,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # the batch is (chip, mirror): the mirrored chip gives the same pair, the same sum
    np.testing.assert_allclose(mfn.embed(np.ascontiguousarray(chip[:, ::-1])), vector, atol=1e-5)
    with pytest.raises(ValueError, match="112x112"):
        mfn.embed(np.zeros((150, 150, 3), np.uint8))


def _quality(**changes: float) -> Quality:
    values = {"face_px": 200.0, "yaw_deg": 0.0, "pitch_deg": 0.0, "sharpness": 500.0}
    values.update(changes)
    return Quality(True, (), brightness=120.0, **values)


def test_fusion_weight_falls_with_blur_pose_size_and_closing_eyes() -> None:
    config = VisionConfig()
    best = fusion_weight(config, _quality(), 0.32)
    assert best == 1.0
    for worse in (
        fusion_weight(config, _quality(sharpness=config.min_sharpness), 0.32),
        fusion_weight(config, _quality(yaw_deg=25.0), 0.32),
        fusion_weight(config, _quality(pitch_deg=-25.0), 0.32),
        fusion_weight(config, _quality(face_px=config.min_face_px), 0.32),
        fusion_weight(config, _quality(), 0.08),  # half closed
    ):
        assert 0.0 < worse < best
    assert fusion_weight(config, _quality(), None) == 1.0  # no eye measurement


@pytest.mark.data
def test_dlib_stays_selectable_and_both_tell_people_apart(lfw_dir: Path) -> None:
    gul = [read_image(lfw_dir / f"images/Abdullah_Gul/Abdullah_Gul_{n:04d}.jpg") for n in (13, 14)]
    other = read_image(lfw_dir / "images/Alvaro_Uribe/Alvaro_Uribe_0007.jpg")
    for name, dim in (("mobilefacenet", 192), ("dlib", 128)):
        pipeline = FacePipeline.from_config(VisionConfig(threads=1, embedder=name))
        a, b, c = (pipeline.process(rgb, 0.0, track=False, gate=False)[0] for rgb in (*gul, other))
        assert a.embedding is not None and a.embedding.shape == (dim,)
        assert a.weight > 0.0
        same, different = float(a.embedding @ b.embedding), float(a.embedding @ c.embedding)
        assert same > different + 0.1, (name, same, different)
