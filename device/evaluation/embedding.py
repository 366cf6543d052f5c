"""Embedding images for evaluation: one face per image, the one nearest the centre."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from device.vision.images import ImageError, read_image
from device.vision.pipeline import FacePipeline


class _Boxed(Protocol):
    @property
    def box(self) -> tuple[float, float, float, float]: ...


Boxed = TypeVar("Boxed", bound=_Boxed)


def central_face(faces: Sequence[Boxed], shape: tuple[int, ...]) -> Boxed | None:
    """The face (or detection) whose box centre is nearest the image centre (LFW-style
    crops)."""
    if not faces:
        return None

    def distance(face: Boxed) -> float:
        x0, y0, x1, y1 = face.box
        return math.hypot((x0 + x1 - shape[1]) / 2, (y0 + y1 - shape[0]) / 2)

    return min(faces, key=distance)


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
    detection = central_face(pipeline.detect(rgb), rgb.shape)
    if detection is None:
        return None
    return pipeline.embed(pipeline.analyse(rgb, detection, eyes=False))


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
