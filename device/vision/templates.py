"""Face templates: several images of one person fused into one vector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import BlinkpayError
from device.vision.images import read_image
from device.vision.pipeline import FacePipeline

# An image further than this from the others is probably someone else or a bad capture;
# per embedder: device.vision.embedder.SAME_PERSON_MIN_COSINE (this is dlib's).
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


def weighted_fusion(embeddings: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Several frames of one face into one vector: the weighted mean of the L2-normalised
    embeddings (weights from quality.fusion_weight), renormalised."""
    if not embeddings or len(embeddings) != len(weights):
        raise TemplateError("need one weight per embedding")
    w = np.asarray(weights, np.float64)
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise TemplateError("fusion weights must be positive")
    units = np.stack([_unit(np.asarray(e, np.float32)) for e in embeddings])
    return _unit((w @ units).astype(np.float32))


def fuse(
    embeddings: Sequence[np.ndarray],
    embedder_version: str,
    min_similarity: float = OUTLIER_MIN_SIMILARITY,
    weights: Sequence[float] | None = None,
) -> Template:
    """Mean of the L2-normalised embeddings (weighted by `weights`, e.g. each image's
    quality.fusion_weight, when given), renormalised. With 3 or more, an embedding whose
    cosine to the mean of the others is below min_similarity is dropped; two that
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
    kept = units[keep]
    vector = (
        _unit(kept.mean(axis=0))
        if weights is None
        else weighted_fusion(list(kept), [w for w, k in zip(weights, keep, strict=True) if k])
    )
    return Template(vector, embedder_version, int(keep.sum()), int((~keep).sum()))


def same_person_min(pipeline: FacePipeline) -> float:
    """The pipeline's embedder's outlier limit for fuse()."""
    embedder = pipeline.embedder
    return embedder.same_person_min if embedder is not None else OUTLIER_MIN_SIMILARITY


def template_from_images(pipeline: FacePipeline, images: Sequence[np.ndarray]) -> Template:
    """The largest face of each image (photos, or frames of one person), quality-gated,
    embedded, and fused by quality weight into one template (outliers dropped)."""
    embeddings, weights = [], []
    for index, rgb in enumerate(images):
        faces = pipeline.process(rgb, float(index), track=False)
        if faces and faces[0].embedding is not None:
            embeddings.append(faces[0].embedding)
            weights.append(faces[0].weight)
    if not embeddings:
        raise TemplateError("no image has a face good enough to enrol")
    return fuse(embeddings, pipeline.embedder_version, same_person_min(pipeline), weights)


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
