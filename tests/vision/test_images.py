"""Untrusted images: empty, truncated, not an image, or huge are refused clearly."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.vision.images import ImageError, decode_image, read_image


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    rng = np.random.default_rng(0)
    ok, data = cv2.imencode(".jpg", rng.integers(0, 255, (height, width, 3), np.uint8))
    assert ok
    return data.tobytes()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny compressed chunk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
    )


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(_jpeg())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_valid_jpeg_and_png_decode_to_rgb() -> None:
    rgb = decode_image(_jpeg(64, 48))
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[:, :, 2] = 200  # red in OpenCV's BGR order
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    decoded = decode_image(png.tobytes())
    assert decoded.shape == (20, 30, 3)
    assert decoded[0, 0].tolist() == [200, 0, 0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is plain text and no picture at all", "not an image"),
        (b"%PDF-1.7\n" + b"\x00" * 100, "not an image"),
        (_jpeg()[:40], "truncated"),
        (_jpeg()[: len(_jpeg()) // 2], "truncated"),
        (_png_header(20000, 20000), "20000x20000.*refused before decoding"),
        (_jpeg_claiming(20000, 20000), "20000x20000.*refused before decoding"),
        (_png_header(8, 8), "too small"),
    ],
    ids=["empty", "text", "pdf", "jpeg-header-cut", "jpeg-half", "png-bomb", "jpeg-bomb", "tiny"],
)
def test_bad_images_are_refused_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        decode_image(data, "upload.jpg")


def test_truncated_png_is_refused() -> None:
    ok, png = cv2.imencode(".png", np.full((64, 64, 3), 90, np.uint8))
    assert ok
    with pytest.raises(ImageError, match=r"upload\.png"):
        decode_image(png.tobytes()[:60], "upload.png")


def test_read_image_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "absent.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=re.escape(f"{empty}: empty")):
        read_image(empty)
