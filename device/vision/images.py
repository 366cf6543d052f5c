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


SUPPORTED = "JPEG, PNG, GIF, BMP, WebP, PGM/PPM/PBM, TIFF, HEIC/HEIF (with pillow-heif)"
# File names the folder readers (bench, eval) pick up; the content decides, not the name.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".pgm", ".ppm", ".pbm", ".pnm",
     ".tif", ".tiff", ".heic", ".heif"}
)  # fmt: skip


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


def _webp_size(data: bytes) -> tuple[int, int]:
    """RIFF/WEBP: the canvas of an extended file (VP8X), else the lossless or lossy frame."""
    if len(data) < 30:
        raise ImageError("truncated WebP header")
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise ImageError("corrupt WebP (VP8L) header")
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ImageError("corrupt WebP (VP8) header")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise ImageError("unknown WebP chunk")


def _pnm_size(data: bytes) -> tuple[int, int]:
    """Netpbm (P1-P6): magic, then width and height as text, with # comments between."""
    tokens: list[bytes] = []
    for line in data[2:512].split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 2:
            break
    try:
        return int(tokens[0]), int(tokens[1])
    except (IndexError, ValueError):
        raise ImageError("truncated or corrupt PNM header") from None


def _tiff_size(data: bytes) -> tuple[int, int]:
    """TIFF: ImageWidth (256) and ImageLength (257) of the first IFD."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        found: dict[int, int] = {}
        for index in range(count):
            entry = data[offset + 2 + 12 * index : offset + 14 + 12 * index]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag in (256, 257):
                fmt = "H" if kind == 3 else "I"  # SHORT or LONG
                found[tag] = struct.unpack(order + fmt, entry[8 : 8 + struct.calcsize(fmt)])[0]
        return found[256], found[257]
    except (struct.error, KeyError):
        raise ImageError("truncated or corrupt TIFF header") from None


HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif")


def _heif_size(data: bytes) -> tuple[int, int]:
    """HEIF/HEIC: the largest `ispe` (image spatial extent) property, so a grid image's full
    size is what is checked, not one of its tiles."""
    sizes = []
    position = data.find(b"ispe", 0, 1 << 20)
    while position != -1 and len(sizes) < 64:
        if position + 16 <= len(data):
            sizes.append(struct.unpack(">II", data[position + 8 : position + 16]))
        position = data.find(b"ispe", position + 4, 1 << 20)
    if not sizes:
        raise ImageError("HEIF without an image size (ispe)")
    return max(w for w, _ in sizes), max(h for _, h in sizes)


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
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ("webp", *_webp_size(data))
    if len(data) > 2 and data[:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace():
        return ("pnm", *_pnm_size(data))
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ("tiff", *_tiff_size(data))
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return ("heif", *_heif_size(data))
    raise ImageError(f"not an image (supported: {SUPPORTED})")


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


def _decode_opencv(data: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)


def _decode_heif(data: bytes, name: str) -> np.ndarray | None:
    """HEIC (what iPhones send) through pillow-heif, the optional `heic` extra."""
    try:
        import pillow_heif
    except ImportError:
        raise ImageError(
            f"{name}: HEIC/HEIF needs the optional package pillow-heif "
            "(pip install 'blinkpay[heic]'), or convert the photo to JPEG"
        ) from None
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
        rgb = np.asarray(heif)
    except Exception:  # the decoder's own errors: a corrupt or truncated file
        return None
    # BGR(A) like OpenCV's decoders, so to_rgb treats every format the same
    return cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR)


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
    decoded = _decode_heif(data, name) if kind == "heif" else _decode_opencv(data)
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
