"""More enrolment and evaluation formats: WebP (what phones send), PGM/PPM/PBM, TIFF and,
with the optional pillow-heif, HEIC. Every image is made here; sizes are still checked
from the header before decoding, and non-images are still refused."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.vision.images import ImageError, decode_image, header_size, read_image

RNG = np.random.default_rng(7)
BGR = RNG.integers(0, 255, (48, 64, 3), np.uint8)


def _encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(ext, image, params or [])
    assert ok, ext
    return data.tobytes()


FORMATS = {
    "webp-lossy": (_encode(".webp", BGR, [cv2.IMWRITE_WEBP_QUALITY, 80]), "webp", False),
    "webp-lossless": (_encode(".webp", BGR, [cv2.IMWRITE_WEBP_QUALITY, 101]), "webp", True),
    "ppm": (_encode(".ppm", BGR), "pnm", True),
    "pgm": (_encode(".pgm", BGR[:, :, 0]), "pnm", True),
    "pgm-16bit": (_encode(".pgm", BGR[:, :, 0].astype(np.uint16) * 257), "pnm", True),
    "ppm-ascii": (_encode(".ppm", BGR, [cv2.IMWRITE_PXM_BINARY, 0]), "pnm", True),
    "tiff": (_encode(".tiff", BGR), "tiff", True),
    "tiff-16bit": (_encode(".tiff", BGR.astype(np.uint16) * 257), "tiff", True),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_format_decodes_to_rgb(name: str) -> None:
    data, kind, exact = FORMATS[name]
    assert header_size(data) == (kind, 64, 48)
    rgb = decode_image(data, f"photo.{name}")
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    if exact and "pgm" not in name:  # RGB order: the blue of BGR is the last channel
        assert np.array_equal(rgb[..., 2], BGR[..., 0])


def test_pnm_header_with_comments() -> None:
    pixels = BGR[:, :, 0].tobytes()
    data = b"P5\n# made by a scanner\n64 # width\n48\n255\n" + pixels
    assert header_size(data) == ("pnm", 64, 48)
    assert decode_image(data).shape == (48, 64, 3)


def _webp_vp8x_claiming(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def _tiff_claiming(width: int, height: int) -> bytes:
    entries = struct.pack("<HHII", 256, 4, 1, width) + struct.pack("<HHII", 257, 4, 1, height)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + b"\x00" * 4


def _heic_claiming(width: int, height: int) -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    ispe = struct.pack(">I", 20) + b"ispe" + b"\x00\x00\x00\x00" + struct.pack(">II", width, height)
    return ftyp + ispe + b"\x00" * 64


@pytest.mark.parametrize(
    "data",
    [
        _webp_vp8x_claiming(16000, 16000),
        b"P6\n30000 30000\n255\n" + b"\x00" * 100,
        _tiff_claiming(20000, 20000),
        _heic_claiming(20000, 20000),
    ],
    ids=["webp", "pnm", "tiff", "heic"],
)
def test_bombs_are_refused_before_decoding(data: bytes) -> None:
    with pytest.raises(ImageError, match="refused before decoding"):
        decode_image(data, "bomb")


@pytest.mark.parametrize(
    "data",
    [
        FORMATS["webp-lossy"][0][:20],
        FORMATS["tiff"][0][:6],
        b"P5\n64",
        FORMATS["webp-lossless"][0][: len(FORMATS["webp-lossless"][0]) // 2],
        FORMATS["tiff"][0][: len(FORMATS["tiff"][0]) // 3],
    ],
    ids=["webp-header", "tiff-header", "pnm-header", "webp-half", "tiff-third"],
)
def test_truncated_files_are_refused(data: bytes) -> None:
    with pytest.raises(ImageError):
        decode_image(data, "cut")


@pytest.mark.parametrize(
    "data",
    [b"Plain text that starts with a P", b"RIFF\x10\x00\x00\x00WAVEfmt ", b"%PDF-1.7\n"],
    ids=["text", "wav", "pdf"],
)
def test_non_images_are_still_refused(data: bytes) -> None:
    with pytest.raises(ImageError, match="not an image"):
        decode_image(data + b"\x00" * 64, "upload")


def test_heic_without_its_decoder_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_heif(name: str, *args: object, **kwargs: object) -> object:
        if name == "pillow_heif":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_heif)
    with pytest.raises(ImageError, match=r"pillow-heif.*blinkpay\[heic\]"):
        decode_image(_heic_claiming(640, 480), "iphone.heic")


def test_heic_round_trip_with_pillow_heif() -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="the optional heic extra")
    rgb = np.ascontiguousarray(BGR[:, :, ::-1])
    heif = pillow_heif.from_bytes(mode="RGB", size=(64, 48), data=rgb.tobytes())
    import io

    buffer = io.BytesIO()
    heif.save(buffer, quality=95)
    decoded = decode_image(buffer.getvalue(), "photo.heic")
    assert decoded.shape == (48, 64, 3)


def test_enrolment_reads_a_webp_photo(tmp_path: Path) -> None:
    path = tmp_path / "phone.webp"
    path.write_bytes(FORMATS["webp-lossy"][0])
    assert read_image(path).shape == (48, 64, 3)
