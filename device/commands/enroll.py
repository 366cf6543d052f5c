"""`blinkpay enroll`: a face template from a few images, for the operator's host.

The terminal never enrols anyone by itself: the host does (backend/), and the template
reaches terminals in the signed shard. This command makes the template with the
terminal's own models, so the operator's host gets vectors of the right embedder version.
Only the vector leaves; the images are read into memory and dropped.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from device.commands._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError
from device.store.updates import encode_vector
from device.vision.images import read_image
from device.vision.pipeline import FacePipeline
from device.vision.templates import Template, TemplateError, fuse

HELP = "make a face template from images"


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("images", nargs="+", type=Path, help="photos of one person")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    pipeline = FacePipeline.from_config(config.vision)
    template, read = template_from_files(pipeline, args.images)
    print_json(
        {
            "embedder_version": template.embedder_version,
            "dim": int(template.vector.shape[0]),
            "images": read,
            "fused": template.count,
            "dropped": template.dropped,
            "vector_b64": encode_vector(template.vector),
        }
    )
    return 0
