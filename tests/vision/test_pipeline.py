"""The one pipeline call on synthetic and real frames; templates; tracking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.vision.images import read_image
from device.vision.templates import TemplateError, fuse, weighted_fusion
from device.vision.tracking import FaceTracker

GUL = "images/Abdullah_Gul/Abdullah_Gul_{:04d}.jpg"


def test_blank_frame_has_no_faces(pipeline) -> None:
    assert pipeline.process(np.zeros((480, 640, 3), np.uint8), 0.0) == []
    assert pipeline.process(np.full((240, 320, 3), 200, np.uint8), 0.1) == []


@pytest.mark.parametrize(
    "frame",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3))],
    ids=["grey", "rgba", "float"],
)
def test_wrong_frame_type_is_refused(pipeline, frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        pipeline.process(frame, 0.0)


@pytest.mark.data
def test_real_face_gives_every_field(pipeline, lfw_dir: Path) -> None:
    rgb = read_image(lfw_dir / GUL.format(13))
    pipeline.reset_tracking()
    faces = pipeline.process(rgb, 0.0)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    assert face.landmarks.shape == (468, 3) and face.points5.shape == (5, 2)
    assert 0.15 < face.eyes.mean < 0.45  # open eyes
    assert face.quality.ok, face.quality
    assert face.embedding is not None and face.embedding.shape == (pipeline.embedder.dim,)
    assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-5
    # the same face a frame later keeps its track id
    again = pipeline.process(rgb, 0.04)
    assert again[0].track_id == face.track_id


@pytest.mark.data
def test_cheap_mode_skips_embedding_until_asked(pipeline, lfw_dir: Path) -> None:
    rgb = read_image(lfw_dir / GUL.format(13))
    face = pipeline.process(rgb, 0.0, embed=False, track=False)[0]
    assert face.embedding is None and face.track_id is None
    vector = pipeline.embed(face)
    assert face.embedding is vector


@pytest.mark.data
def test_template_from_several_images_matches_a_new_image(pipeline, lfw_dir: Path) -> None:
    uribe = "images/Alvaro_Uribe/Alvaro_Uribe_{:04d}.jpg"
    vectors = []
    for n in (7, 10, 17):
        rgb = read_image(lfw_dir / uribe.format(n))
        vectors.append(pipeline.process(rgb, 0.0, track=False, gate=False)[0].embedding)
    template = fuse(vectors, pipeline.embedder_version)
    assert template.count == 3 and template.dropped == 0
    assert template.embedder_version == pipeline.embedder_version
    probe = pipeline.process(read_image(lfw_dir / uribe.format(26)), 0.0, gate=False)[0]
    other = read_image(lfw_dir / GUL.format(13))
    impostor = pipeline.process(other, 0.0, track=False, gate=False)[0]
    assert float(template.vector @ probe.embedding) > float(template.vector @ impostor.embedding)


def test_fuse_drops_an_outlier_and_refuses_disagreement() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=128)
    same = [base + rng.normal(scale=0.1, size=128) for _ in range(3)]
    stranger = rng.normal(size=128)
    template = fuse([*same, stranger], "v1")
    assert (template.count, template.dropped) == (3, 1)
    assert float(template.vector @ (base / np.linalg.norm(base))) > 0.99
    with pytest.raises(TemplateError, match="same person"):
        fuse([base, stranger], "v1")
    with pytest.raises(TemplateError, match="no usable face"):
        fuse([], "v1")


def test_fuse_weights_each_image_by_its_quality_and_drops_the_outlier_first() -> None:
    x, y, stranger = np.eye(3, dtype=np.float32)
    near_x = _unit_of(x + 0.2 * y)
    template = fuse([x, near_x, stranger], "v1", min_similarity=0.5, weights=[3.0, 1.0, 9.0])
    assert (template.count, template.dropped) == (2, 1)  # its weight does not save it
    np.testing.assert_allclose(template.vector, _unit_of(3 * x + near_x), atol=1e-6)
    # a per-embedder outlier limit: MobileFaceNet's same-person cosines are far lower
    assert fuse([x, near_x], "v1", min_similarity=0.5).count == 2
    with pytest.raises(TemplateError, match="positive"):
        weighted_fusion([x, y], [1.0, 0.0])
    with pytest.raises(TemplateError, match="one weight per embedding"):
        weighted_fusion([x, y], [1.0])


def _unit_of(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_tracker_keeps_ids_and_forgets_old_tracks() -> None:
    tracker = FaceTracker(min_iou=0.3, max_age_s=1.0)
    a, b = (0, 0, 100, 100), (300, 0, 400, 100)
    first = tracker.update([a, b], 0.0)
    moved = tracker.update([(305, 5, 405, 105), (5, 0, 105, 100)], 0.1)
    assert moved == [first[1], first[0]]
    later = tracker.update([(5, 0, 105, 100)], 5.0)  # unseen for longer than max_age
    assert later[0] not in first
