"""The passive anti-spoofing cue: crop geometry, decision rule, confidence gate, model
loading, the publisher's labels on its sample photos, the per-track rate limit."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.vision.config import VisionConfig
from device.vision.images import read_image, to_rgb
from device.vision.models import ModelError, load_manifest
from device.vision.passive import (
    MIN_CONTEXT_SCALE,
    PASSIVE_ROLES,
    ModelScores,
    PassiveCue,
    context_box,
    context_crop,
    context_room,
    decide,
)
from device.vision.pipeline import FacePipeline

# the publisher's README: F1 a printed photo, F2 a face on a tablet, T1 a live person
PUBLISHED_LABELS = {"image_F1.jpg": "spoof", "image_F2.jpg": "spoof", "image_T1.jpg": "real"}


@pytest.fixture(scope="module")
def cue() -> PassiveCue:
    return PassiveCue(load_manifest(), 1, min_detection_score=0.75)


# -- crop geometry -------------------------------------------------------------------------


def test_centred_box_is_scaled_around_its_centre() -> None:
    # a 100 px box centred at (320, 240) scaled 2x: 200 px around the same centre
    assert context_box((270, 190, 370, 290), 2.0, 640, 480) == (220, 140, 420, 340)


def test_crop_at_the_left_and_top_border_is_shifted_inside_not_clipped() -> None:
    left, top, right, bottom = context_box((0, 10, 100, 110), 2.7, 640, 480)
    assert (left, top) == (0, 0)
    assert (right, bottom) == (270, 270)  # full 270 px kept: context, not a smaller crop


def test_crop_at_the_right_and_bottom_border_is_shifted_inside() -> None:
    left, top, right, bottom = context_box((560, 400, 640, 480), 2.0, 640, 480)
    assert (right, bottom) == (639, 479)
    assert (left, top) == (479, 319)


def test_scale_is_reduced_to_fit_the_image() -> None:
    # 4x a 40 px box would be 160 px in a 100 px image: the scale drops to 99/40
    assert context_box((30, 30, 70, 70), 4.0, 100, 100) == (0, 0, 99, 99)
    # a wide frame: the height limits the scale
    left, top, right, bottom = context_box((300, 20, 340, 60), 4.0, 640, 100)
    assert (top, bottom) == (0, 99)
    assert right - left == 99  # the box stays square


def test_empty_box_is_refused() -> None:
    with pytest.raises(ValueError, match="empty face box"):
        context_box((10, 10, 10, 50), 2.7, 640, 480)


@given(
    width=st.integers(20, 2000),
    height=st.integers(20, 2000),
    fx=st.floats(0.0, 0.95),
    fy=st.floats(0.0, 0.95),
    fw=st.floats(0.02, 1.0),
    fh=st.floats(0.02, 1.0),
    scale=st.sampled_from([1.0, 2.7, 4.0]),
)
def test_crop_always_lies_inside_the_image(
    width: int, height: int, fx: float, fy: float, fw: float, fh: float, scale: float
) -> None:
    x0, y0 = fx * width, fy * height
    box = (x0, y0, x0 + max(1.0, fw * (width - x0)), y0 + max(1.0, fh * (height - y0)))
    left, top, right, bottom = context_box(box, scale, width, height)
    assert 0 <= left <= right <= width - 1
    assert 0 <= top <= bottom <= height - 1


def test_crop_is_bgr_at_the_model_size() -> None:
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[..., 0] = 200  # red
    crop = context_crop(rgb, (270, 190, 370, 290), 2.7, (80, 80))
    assert crop.shape == (80, 80, 3) and crop.dtype == np.uint8
    assert (crop[..., 2] == 200).all() and (crop[..., 0] == 0).all()


# -- decision rule and gate ----------------------------------------------------------------


def _scores(*probabilities: tuple[float, float, float]) -> tuple[ModelScores, ...]:
    return tuple(ModelScores(f"m{i}", 2.7, p) for i, p in enumerate(probabilities))


def test_publisher_rule_is_the_argmax_of_the_summed_softmax() -> None:
    # real probability 0.45 but class 1 still the largest sum: real by the argmax rule
    verdict, real = decide(_scores((0.3, 0.45, 0.25), (0.25, 0.45, 0.3)), None)
    assert verdict == "real" and math.isclose(real, 0.45)
    # mean real probability 0.4, but attack class 2 sums to 1.0 against 0.8: spoof
    verdict, real = decide(_scores((0.1, 0.3, 0.6), (0.1, 0.5, 0.4)), None)
    assert verdict == "spoof" and math.isclose(real, 0.4)


def test_a_set_threshold_replaces_the_argmax_rule() -> None:
    scores = _scores((0.3, 0.45, 0.25), (0.25, 0.45, 0.3))
    assert decide(scores, 0.5)[0] == "spoof"
    assert decide(scores, 0.4)[0] == "real"


@pytest.mark.parametrize("detection_score", [0.0, 0.6, 0.7499, float("nan")])
def test_weak_detection_gives_no_verdict_and_runs_no_model(
    cue: PassiveCue, detection_score: float
) -> None:
    frame = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    result = cue.score(frame, (270, 190, 370, 290), detection_score, timestamp=3.0)
    assert result.verdict == "no_verdict" and not result.is_real
    assert result.real_probability is None and result.models == ()
    assert result.timestamp == 3.0


@pytest.mark.parametrize(
    ("box", "verdict_expected"),
    [
        ((270, 190, 370, 290), True),  # room for 4.8x the face: context enough
        ((100, 60, 440, 420), False),  # the face fills 3/4 of the frame's height: no context
        ((0, 0, 639, 479), False),  # nothing but the face
    ],
)
def test_a_face_that_fills_the_frame_gives_no_verdict(
    cue: PassiveCue, box: tuple[int, int, int, int], verdict_expected: bool
) -> None:
    frame = np.random.default_rng(3).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    result = cue.score(frame, box, 0.9)
    assert (result.verdict != "no_verdict") == verdict_expected
    assert context_room(box, 640, 480) >= MIN_CONTEXT_SCALE or result.models == ()


def test_confident_detection_runs_both_models(cue: PassiveCue) -> None:
    frame = np.random.default_rng(2).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    result = cue.score(frame, (270, 190, 370, 290), 0.9)
    assert result.verdict in ("real", "spoof")
    assert [m.role for m in result.models] == list(PASSIVE_ROLES)
    assert [m.context_scale for m in result.models] == [2.7, 4.0]
    for model in result.models:
        assert math.isclose(sum(model.probabilities), 1.0, abs_tol=1e-6)
    assert result.real_probability is not None and 0.0 <= result.real_probability <= 1.0


# -- loading through the manifest ------------------------------------------------------------


@pytest.mark.parametrize("role", PASSIVE_ROLES)
def test_corrupted_passive_model_is_refused_naming_the_file(models_copy: Path, role: str) -> None:
    path = load_manifest(models_copy).entry(role).path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=re.escape(f"corrupted: {path}")):
        FacePipeline.from_config(VisionConfig(models_dir=models_copy))


@pytest.mark.parametrize("role", PASSIVE_ROLES)
def test_missing_passive_model_is_refused_naming_the_file(models_copy: Path, role: str) -> None:
    path = load_manifest(models_copy).entry(role).path
    path.unlink()
    with pytest.raises(ModelError, match=re.escape(f"missing: {path}")):
        FacePipeline.from_config(VisionConfig(models_dir=models_copy))


def test_disabled_cue_needs_no_passive_model(models_copy: Path) -> None:
    for role in PASSIVE_ROLES:
        load_manifest(models_copy).entry(role).path.unlink()
    pipeline = FacePipeline.from_config(
        VisionConfig(models_dir=models_copy, passive_enabled=False), with_embedder=False
    )
    assert pipeline.passive is None


def test_manifest_without_context_scale_is_refused(models_copy: Path) -> None:
    manifest_path = models_copy / "manifest.json"
    data = json.loads(manifest_path.read_text())
    del data["models"]["passive_v1se"]["context_scale"]
    manifest_path.write_text(json.dumps(data))
    name = data["models"]["passive_v1se"]["file"]
    with pytest.raises(ModelError, match=re.escape(f"{name}: manifest lacks context_scale")):
        PassiveCue(load_manifest(models_copy), 1, min_detection_score=0.75)


# -- on real photos --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def attack_photos(shared_data: Path) -> Path:
    path = shared_data / "liveness" / "attack-photos"
    if not all((path / name).exists() for name in PUBLISHED_LABELS):
        pytest.skip(f"the publisher's sample photos are not present at {path}")
    return path


def _upright(path: Path) -> np.ndarray:
    """The photo as cv2.imread (the publisher's loader) shows it: EXIF orientation applied."""
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return to_rgb(image)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize(("name", "verdict"), sorted(PUBLISHED_LABELS.items()))
def test_shipped_models_give_the_publishers_labels(
    pipeline: FacePipeline, attack_photos: Path, name: str, verdict: str
) -> None:
    faces = pipeline.process(_upright(attack_photos / name), 0.0, track=False, embed=False)
    assert faces, f"no face found in {name}"
    passive = faces[0].passive
    assert passive is not None and passive.verdict == verdict, passive


@pytest.mark.data
def test_tracked_face_is_scored_at_most_max_hz(lfw_dir: Path) -> None:
    config = VisionConfig(threads=1, passive_max_hz=4.0)  # at most every 0.25 s per track
    pipeline = FacePipeline.from_config(config, with_embedder=False)
    rgb = read_image(lfw_dir / "images/Abdullah_Gul/Abdullah_Gul_0013.jpg")
    first = pipeline.process(rgb, 10.0, embed=False)[0]
    assert first.passive is not None and first.passive.timestamp == 10.0
    carried = pipeline.process(rgb, 10.1, embed=False)[0]
    assert carried.track_id == first.track_id
    assert carried.passive is first.passive  # the track's last score, with its own time
    fresh = pipeline.process(rgb, 10.3, embed=False)[0]
    assert fresh.passive is not None and fresh.passive.timestamp == 10.3
    skipped = pipeline.process(rgb, 10.4, embed=False, passive=False)[0]
    assert skipped.passive is None
