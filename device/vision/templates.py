"""Face templates: several images of one person fused into one vector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import BlinkpayError
from device.vision.images import read_image
from device.vision.pipeline import FacePipeline

# Same-person cosine for the dlib descriptor is mostly above ~0.85; an image further
# than this from the others is probably someone else or a bad capture.
OUTLIER_MIN_SIMILARITY = 0.8


class TemplateError(BlinkpayError):
    """No usable template could be made from the images given."""


@dataclass(frozen=True)
class Template:
    vector: np.ndarray  # L2-normalised float32
    embedder_version: str
    count: int  # embeddings fused
    dropped: int  # embeddings dropped as outliers


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise TemplateError("embedding has zero length")
    return (v / norm).astype(np.float32)


def fuse(
    embeddings: Sequence[np.ndarray],
    embedder_version: str,
    min_similarity: float = OUTLIER_MIN_SIMILARITY,
) -> Template:
    """Mean of the L2-normalised embeddings, renormalised. With 3 or more, an embedding
    whose cosine to the mean of the others is below min_similarity is dropped; two that
    disagree cannot be told apart, so that is an error."""
    if not embeddings:
        raise TemplateError("no usable face in any image")
    units = np.stack([_unit(np.asarray(e, np.float32)) for e in embeddings])
    keep = np.ones(len(units), bool)
    if len(units) == 2 and float(units[0] @ units[1]) < min_similarity:
        raise TemplateError("the two images do not look like the same person; add a third")
    if len(units) >= 3:
        total = units.sum(axis=0)
        for i in range(len(units)):
            others = _unit(total - units[i])
            keep[i] = float(units[i] @ others) >= min_similarity
        if keep.sum() < 2:
            raise TemplateError("the images do not agree on one person")
    vector = _unit(units[keep].mean(axis=0))
    return Template(vector, embedder_version, int(keep.sum()), int((~keep).sum()))


def template_from_images(pipeline: FacePipeline, images: Sequence[np.ndarray]) -> Template:
    """The largest face of each image, quality-gated, embedded, and fused (outliers dropped)."""
    embeddings = []
    for index, rgb in enumerate(images):
        faces = pipeline.process(rgb, float(index), track=False)
        if faces and faces[0].embedding is not None:
            embeddings.append(faces[0].embedding)
    if not embeddings:
        raise TemplateError("no image has a face good enough to enrol")
    return fuse(embeddings, pipeline.embedder_version)


def template_from_files(pipeline: FacePipeline, paths: Sequence[Path]) -> tuple[Template, int]:
    """(template, images read) from photo files; a file that is not a usable image is a
    one-line error naming it. The pixels live only in this call."""
    images = []
    for path in paths:
        try:
            images.append(read_image(path))
        except (OSError, ValueError) as exc:
            raise BlinkpayError(f"{path}: {exc}") from None
    return template_from_images(pipeline, images), len(images)
