"""`blinkpay camera-test`: aim the camera. A live readout of what the terminal sees (face
box, face size, eye openness, brightness, quality, passive anti-spoofing score) in the
terminal and, with --serve, an
MJPEG page on an address the engineer chooses.

The page exists only while the command runs; frames live in memory only (the newest one,
for the page) and are never written anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from device.cli._common import add_config_argument, config_from_args
from device.errors import BlinkpayError

HELP = "aim the camera: live face box, size, eyes, brightness, passive score (and a page)"
BOUNDARY = "blinkpay-frame"
PAGE = """<!doctype html><title>blinkpay camera-test</title>
<body style="background:#222;color:#eee;font-family:sans-serif">
<h1>blinkpay camera-test</h1><p>Live while the command runs; nothing is stored.</p>
<img src="/stream.mjpg" style="max-width:100%" alt="camera"></body>
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--sim", action="store_true", help="the synthetic camera (no camera module needed)"
    )
    parser.add_argument(
        "--serve",
        metavar="HOST:PORT",
        default=None,
        help="also serve a live MJPEG page at http://HOST:PORT/ while this runs (e.g. the "
        "Pi's LAN address; 127.0.0.1 for this machine only; port 0 picks a free one)",
    )
    parser.add_argument(
        "--seconds", type=float, default=0.0, help="stop after this long (default: Ctrl-C)"
    )
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between readout lines")


@dataclass(frozen=True)
class Reading:
    """What one frame shows, for the readout line and the page's overlay."""

    width: int
    brightness: float  # mean grey level of the whole frame, 0..255
    box: tuple[int, int, int, int] | None = None
    face_px: float = 0.0
    eyes: tuple[float, float] | None = None
    quality: str = ""
    passive: str = "passive -"  # the anti-spoofing cue's verdict and real probability

    def line(self) -> str:
        light = f"brightness {self.brightness:5.1f}"
        if self.box is None:
            return f"no face        | {light}"
        x0, y0, x1, y1 = self.box
        share = 100.0 * (x1 - x0) / self.width
        eyes = "eyes -" if self.eyes is None else f"eyes R {self.eyes[0]:.2f} L {self.eyes[1]:.2f}"
        return (
            f"face {x1 - x0}x{y1 - y0} px at ({x0},{y0}), {share:.0f}% of width | {eyes} | "
            f"{light} | quality {self.quality} | {self.passive}"
        )


def passive_text(score: Any) -> str:
    """`passive real 0.93`, `passive spoof 0.12`; `passive -` when the cue is off or the
    detection was too weak to place its crops (no verdict: never read that as real)."""
    if score is None or score.real_probability is None:
        return "passive -"
    return f"passive {score.verdict} {score.real_probability:.2f}"


def read_frame(rgb: np.ndarray, faces: list[Any]) -> Reading:
    brightness = float(rgb.mean())
    if not faces:
        return Reading(rgb.shape[1], brightness)
    face = faces[0]  # the largest
    x0, y0, x1, y1 = (int(v) for v in np.rint(face.box))
    eyes = None if face.eyes is None else (face.eyes.right, face.eyes.left)
    quality = "ok" if face.quality.ok else ",".join(face.quality.reasons)
    passive = passive_text(getattr(face, "passive", None))
    box = (x0, y0, x1, y1)
    return Reading(rgb.shape[1], brightness, box, face.quality.face_px, eyes, quality, passive)


def annotate_jpeg(rgb: np.ndarray, reading: Reading) -> bytes:
    """The frame with its reading drawn on, as JPEG bytes (in memory only)."""
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if reading.box is not None:
        x0, y0, x1, y1 = reading.box
        colour = (0, 200, 0) if reading.quality == "ok" else (0, 160, 255)
        cv2.rectangle(bgr, (x0, y0), (x1, y1), colour, 2)
    # Two lines: the readout is longer than a small frame is wide.
    text = reading.line()
    cut = text.rfind(" | ", 0, 90) if len(text) > 90 else len(text)
    cut = cut if cut > 0 else min(len(text), 90)
    for row, part in enumerate((text[:cut], text[cut:].lstrip(" |"))):
        cv2.putText(bgr, part, (8, 20 + 18 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise BlinkpayError("could not encode a frame as JPEG")
    return data.tobytes()


class LatestJpeg:
    """The newest annotated frame, handed to every page viewer; nothing older is kept."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._serial = 0
        self.closed = False

    def put(self, jpeg: bytes) -> None:
        with self._cond:
            self._jpeg, self._serial = jpeg, self._serial + 1
            self._cond.notify_all()

    def wait_newer(self, serial: int, timeout: float) -> tuple[int, bytes | None]:
        with self._cond:
            self._cond.wait_for(lambda: self._serial > serial or self.closed, timeout)
            return self._serial, self._jpeg

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._jpeg = None
            self._cond.notify_all()


def _handler(latest: LatestJpeg) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: the readout matters
            pass

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(PAGE.encode(), "text/html; charset=utf-8")
            elif self.path == "/frame.jpg":
                _, jpeg = latest.wait_newer(0, 5.0)
                if jpeg is None:
                    self.send_error(503, "no frame yet")
                else:
                    self._send(jpeg, "image/jpeg")
            elif self.path == "/stream.mjpg":
                self._stream()
            else:
                self.send_error(404)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            serial = 0
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while not latest.closed:
                    serial, jpeg = latest.wait_newer(serial, 1.0)
                    if jpeg is None:
                        continue
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg
                        + b"\r\n"
                    )

    return Handler


def start_server(address: str, latest: LatestJpeg) -> ThreadingHTTPServer:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BlinkpayError(f"--serve {address}: give HOST:PORT, e.g. 192.168.1.40:8080")
    try:
        server = ThreadingHTTPServer((host.strip("[]"), int(port)), _handler(latest))
    except OSError as exc:
        raise BlinkpayError(f"--serve {address}: cannot listen there ({exc.strerror})") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="camera-page", daemon=True).start()
    return server


def run(args: argparse.Namespace) -> int:
    from device.clock import SystemClock
    from device.hw.camera import CameraRunner, camera_source_from_config
    from device.vision.pipeline import FacePipeline

    config = config_from_args(args)
    clock = SystemClock()
    pipeline = FacePipeline.from_config(config.vision)
    camera = config.hardware.camera
    runner = CameraRunner(camera_source_from_config(camera, clock, args.sim), clock)
    latest = LatestJpeg()
    server = start_server(args.serve, latest) if args.serve else None
    if server is not None:
        host, port = server.server_address[:2]
        print(f"camera-test: live page at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        _loop(runner, pipeline, latest if server else None, args)
    finally:
        latest.close()
        runner.close()
        if server is not None:
            server.shutdown()
            server.server_close()
    return 0


def _loop(runner: Any, pipeline: Any, latest: LatestJpeg | None, args: argparse.Namespace) -> None:
    runner.start()
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else float("inf")
    next_line = 0.0
    while time.monotonic() < deadline:
        frame = runner.get(timeout=1.0)
        if frame is None:
            if runner.health().ended:
                print("camera-test: the camera source ended", flush=True)
                return
            continue
        faces = pipeline.process(frame.rgb, frame.timestamp, embed=False, track=False)
        reading = read_frame(frame.rgb, faces)
        if latest is not None:
            latest.put(annotate_jpeg(frame.rgb, reading))
        if time.monotonic() >= next_line:
            print(reading.line(), flush=True)
            next_line = time.monotonic() + args.interval
