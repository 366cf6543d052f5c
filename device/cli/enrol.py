"""`blinkpay enrol` (`enroll` too): a face template from a few photos, for the operator's host.

The terminal never enrols anyone by itself: the host does (backend/), and the template
reaches terminals in the signed shard. This command makes the template with the
terminal's own models, so the operator's host gets vectors of the right embedder version.
Only the vector leaves; the images are read into memory and dropped. Each photo must show
one face: a photo of two is refused, never guessed at. The duplicate-face check (this face
enrolled under another account) runs where the whole gallery is: `blinkpay-host enrol
--template FILE` makes it before anything is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from device.cli._common import add_config_argument, config_from_args, print_json
from device.store.updates import encode_vector
from device.vision.enrol_photos import template_from_photos
from device.vision.pipeline import FacePipeline

HELP = "make a face template from photos (one face each)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "images", nargs="+", type=Path, help="photos of one person, one face in each"
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    pipeline = FacePipeline.from_config(config.vision)
    template, read = template_from_photos(pipeline, args.images)
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
