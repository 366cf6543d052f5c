"""Decode and validate untrusted image files into RGB uint8 arrays.

The dimensions are read from the file header BEFORE decoding, so a small file that
claims 20000x20000 pixels (a decompression bomb) is refused without allocating it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from device.errors import BlinkpayError

MAX_PIXELS = 40_000_000  # ~ a 7700x5200 photo; anything bigger is not a face capture
MAX_SIDE = 10_000
MAX_FILE_BYTES = 64 * 1024 * 1024
MIN_SIDE = 16


class ImageError(BlinkpayError):
    """An image that cannot be used: empty, truncated, not an image, or absurdly large."""


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageError("corrupt JPEG header")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC) carry the frame size
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if length < 2:
            raise ImageError("corrupt JPEG header")
        pos += 2 + length
    raise ImageError("truncated JPEG: no frame header")


def header_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header alone; ImageError for unknown formats."""
    if data[:3] == b"\xff\xd8\xff":
        return ("jpeg", *_jpeg_size(data))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("truncated PNG header")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:6] in (b"GIF87a", b"GIF89a"):
        if len(data) < 10:
            raise ImageError("truncated GIF header")
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", width, height
    if data[:2] == b"BM":
        if len(data) < 26:
            raise ImageError("truncated BMP header")
        width, height = struct.unpack("<ii", data[18:26])
        return "bmp", abs(width), abs(height)
    raise ImageError("not an image (supported: JPEG, PNG, GIF, BMP)")


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Grey, grey+alpha, BGR or BGRA (OpenCV's order) to contiguous RGB uint8."""
    if image.dtype != np.uint8:
        # 16-bit PNGs: keep the top 8 bits
        image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image
        if image.dtype != np.uint8:
            raise ImageError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise ImageError(f"unsupported channel count {channels}")


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Encoded bytes to an RGB uint8 array (H, W, 3), or ImageError saying why not."""
    if not data:
        raise ImageError(f"{name}: empty file")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: file too large ({len(data)} bytes > {MAX_FILE_BYTES})")
    try:
        kind, width, height = header_size(data)
    except ImageError as exc:
        raise ImageError(f"{name}: {exc}") from None
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(f"{name}: {width}x{height} is too small (min side {MIN_SIDE})")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageError(
            f"{name}: {width}x{height} {kind} refused before decoding "
            f"(max side {MAX_SIDE}, max {MAX_PIXELS} pixels)"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.size == 0:
        raise ImageError(f"{name}: cannot decode {kind} (corrupt or truncated)")
    if decoded.shape[0] != height or decoded.shape[1] != width:
        raise ImageError(f"{name}: decoded size does not match its header")
    if kind == "jpeg" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        # libjpeg fills a cut-off file with grey and only warns: refuse it here
        raise ImageError(f"{name}: truncated JPEG (no end marker)")
    return to_rgb(decoded)


def read_image(path: Path | str) -> np.ndarray:
    """Read and decode an image file into RGB uint8; ImageError on any problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{path}: file too large ({size} bytes > {MAX_FILE_BYTES})")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from None
    return decode_image(data, str(path))
