"""Face templates: several images of one person fused into one vector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from device.errors import BlinkpayError

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
