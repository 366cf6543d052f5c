"""Enrolment photos for the command lines (`blinkpay enrol`, `blinkpay-host enrol
--images`): each file read into memory, exactly one face in each, the embeddings fused.

A photo with two faces is refused, never guessed at (the console refuses it the same way,
backend/console/enrolment.py): enrolling the wrong person of a pair would let them pay.
The pixels live only in this call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from device.errors import BlinkpayError
from device.vision.images import read_image
from device.vision.pipeline import FacePipeline
from device.vision.templates import Template, TemplateError, fuse


def one_face_embedding(pipeline: FacePipeline, rgb: np.ndarray, name: str) -> np.ndarray | None:
    """The embedding of the one face in `rgb`; None when that face fails the quality gate.
    TemplateError naming the photo when it holds no face or more than one."""
    faces = pipeline.process(rgb, 0.0, track=False, passive=False)
    if not faces:
        raise TemplateError(f"{name}: no face found; give a photo of the customer's face")
    if len(faces) > 1:
        raise TemplateError(
            f"{name}: {len(faces)} faces; give a photo of one person only (crop the others out)"
        )
    return faces[0].embedding


def template_from_photos(pipeline: FacePipeline, paths: Sequence[Path]) -> tuple[Template, int]:
    """(template, photos read): one face per photo, fused (outliers dropped)."""
    embeddings = []
    for path in paths:
        try:
            rgb = read_image(path)
        except (OSError, ValueError) as exc:
            raise BlinkpayError(f"{path}: {exc}") from None
        embedding = one_face_embedding(pipeline, rgb, str(path))
        if embedding is not None:
            embeddings.append(embedding)
    if not embeddings:
        raise TemplateError(
            "no photo has a face good enough to enrol (sharp, lit, facing the camera)"
        )
    return fuse(embeddings, pipeline.embedder_version), len(paths)
