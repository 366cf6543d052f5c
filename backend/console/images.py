"""Uploaded images, checked before they cost memory: the format and the pixel size come
from the file's header (Pillow reads only the header), so a small file that claims a huge
image is refused without decoding it; only then does OpenCV decode, off the event loop
(the routes call these in a worker thread). Nothing is written anywhere."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from backend.console.enrolment import EnrolRefused
from backend.console.i18n import N_

MAX_PHOTO_BYTES = 4 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
FORMATS = {"JPEG", "PNG", "WEBP"}
NOT_AN_IMAGE = N_("that file is not a JPEG, PNG or WebP image")


def header_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header of a JPEG, PNG or WebP; EnrolRefused otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # lazy: the header only
                if image.format not in FORMATS:
                    raise EnrolRefused(NOT_AN_IMAGE, "not_an_image")
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise EnrolRefused(
            N_("that image is too large (its header claims far more than 16 megapixels)"),
            "oversized_upload",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise EnrolRefused(NOT_AN_IMAGE, "not_an_image") from None
    return int(width), int(height)


def decode_photo(
    data: bytes,
    max_bytes: int = MAX_PHOTO_BYTES,
    max_pixels: int = MAX_PIXELS,
    longest_side: int | None = None,
) -> np.ndarray:
    """RGB uint8 from JPEG/PNG/WebP bytes; EnrolRefused for anything else, for more than
    `max_bytes` or for a header that claims more than `max_pixels` (checked before any
    decoding). `longest_side`: scaled down to it right after decoding (blink frames)."""
    if len(data) > max_bytes:
        limit = f"{max_bytes / 2**20:g} MB" if max_bytes >= 2**20 else f"{max_bytes // 1024} KB"
        raise EnrolRefused(
            N_("an image may be at most {limit}"), "oversized_upload", args={"limit": limit}
        )
    width, height = header_size(data)
    if width * height > max_pixels or width <= 0 or height <= 0:
        raise EnrolRefused(
            N_("that image is too large ({width}x{height}; at most {most} megapixels)"),
            "oversized_upload",
            args={"width": width, "height": height, "most": f"{max_pixels / 1e6:.1f}"},
        )
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise EnrolRefused(NOT_AN_IMAGE, "not_an_image")
    if longest_side is not None and max(bgr.shape[:2]) > longest_side:
        scale = longest_side / max(bgr.shape[:2])
        size = (max(1, round(bgr.shape[1] * scale)), max(1, round(bgr.shape[0] * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
