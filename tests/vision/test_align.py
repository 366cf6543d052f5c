"""Alignment geometry: similarity fit, dlib's chip geometry, mesh -> dlib 5 points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from device.vision.align import (
    DLIB5_TEMPLATE,
    chip_matrix,
    dlib5_from_mesh,
    extract_chip,
    similarity_transform,
)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.hstack([rot, [[tx], [ty]]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    truth = _similarity(23.0, 1.7, -12.0, 40.0)
    np.testing.assert_allclose(similarity_transform(src, _apply(truth, src)), truth, atol=1e-9)


def test_similarity_transform_never_reflects() -> None:
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mirrored = src * [-1.0, 1.0]
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def _template_in_frame(size: int, padding: float, truth: np.ndarray) -> np.ndarray:
    template = (padding + DLIB5_TEMPLATE) / (2 * padding + 1) * size
    return _apply(truth, template)


@pytest.mark.parametrize("angle", [0.0, 15.0, -40.0])
def test_chip_matrix_puts_the_points_on_dlibs_template(angle: float) -> None:
    size, padding = 150, 0.25
    # a face 2.2x the chip size, rotated and shifted in the frame
    truth = _similarity(angle, 2.2, 300.0, 120.0)
    points = _template_in_frame(size, padding, truth)
    matrix = chip_matrix(points, size, padding)
    on_chip = _apply(matrix, points)
    template = (padding + DLIB5_TEMPLATE) / (2 * padding + 1) * size
    # dlib's chip spans size*scale-1 frame pixels over size-1 chip pixels, so points
    # land within a fraction of a pixel of the template, scaled about the centre
    centre = (size - 1) / 2
    expected = centre + (template - size / 2) * (size - 1) / (size - 1 / 2.2)
    np.testing.assert_allclose(on_chip, expected, atol=0.05)
    assert np.abs(on_chip - template).max() < 1.0


def test_extract_chip_samples_the_right_place() -> None:
    frame = np.zeros((600, 800, 3), np.uint8)
    frame[:, 400:] = 255  # right half white
    truth = _similarity(0.0, 2.0, 250.0, 150.0)  # chip centre at frame x = 250 + 150 = 400
    matrix = chip_matrix(_template_in_frame(150, 0.25, truth), 150, 0.25)
    chip = extract_chip(frame, matrix, 150)
    assert chip.shape == (150, 150, 3)
    assert chip[:, :70].max() == 0
    assert chip[:, 80:].min() == 255


def test_dlib5_from_mesh_commutes_with_similarity() -> None:
    rng = np.random.default_rng(7)
    mesh = np.hstack([rng.uniform(100, 300, (468, 2)), rng.uniform(-20, 20, (468, 1))])
    truth = _similarity(31.0, 0.6, 50.0, -10.0)
    moved = mesh.copy()
    moved[:, :2] = _apply(truth, mesh[:, :2])
    np.testing.assert_allclose(
        dlib5_from_mesh(moved), _apply(truth, dlib5_from_mesh(mesh)), atol=1e-9
    )
