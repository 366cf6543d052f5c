"""Embedding images for evaluation: one face per image, the one nearest the centre."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.vision.images import ImageError, read_image
from device.vision.pipeline import FacePipeline, FaceResult


def central_face(faces: list[FaceResult], shape: tuple[int, ...]) -> FaceResult | None:
    """The face whose box centre is nearest the image centre (LFW-style crops)."""
    if not faces:
        return None
    centre = np.array([shape[1] / 2, shape[0] / 2])
    return min(faces, key=lambda f: float(np.linalg.norm(f.centre - centre)))


def embed_file(pipeline: FacePipeline, path: Path) -> np.ndarray | None:
    """The central face's embedding, or None when the image is unusable or has no face.
    No quality gate: evaluation measures the models on every face they can find."""
    try:
        rgb = read_image(path)
    except ImageError:
        return None
    return embed_rgb(pipeline, rgb)


def embed_rgb(pipeline: FacePipeline, rgb: np.ndarray) -> np.ndarray | None:
    """The central face's embedding in a decoded image, or None without a face."""
    faces = pipeline.process(rgb, 0.0, embed=False, track=False, eyes=False)
    face = central_face(faces, rgb.shape)
    return None if face is None else pipeline.embed(face)


def embed_files(
    pipeline: FacePipeline, paths: list[Path], progress=None
) -> dict[Path, np.ndarray | None]:
    out: dict[Path, np.ndarray | None] = {}
    for path in paths:
        if path not in out:
            out[path] = embed_file(pipeline, path)
        if progress is not None:
            progress.step()
    return out
