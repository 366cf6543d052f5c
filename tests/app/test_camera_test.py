"""`blinkpay camera-test`: the readout, and the MJPEG page that exists only while the
command runs (the test fetches a frame from it), on the simulated camera."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _start(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "device.cli", "camera-test", "--sim", "--serve", "127.0.0.1:0",
         "--interval", "0.2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )  # fmt: skip


def _page_url(process: subprocess.Popen) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+/", line)
    assert found, line
    return found.group(0)


def _fetch(url: str) -> bytes:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.headers["Content-Type"] == "image/jpeg"
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_page_serves_frames_only_while_it_runs(tmp_path: Path) -> None:
    process = _start(tmp_path, "--seconds", "30")
    try:
        url = _page_url(process)
        frame = cv2.imdecode(np.frombuffer(_fetch(url + "frame.jpg"), np.uint8), cv2.IMREAD_COLOR)
        assert frame is not None and frame.shape[0] > 0
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"/stream.mjpg" in response.read()
        with urllib.request.urlopen(url + "stream.mjpg", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            assert b"Content-Type: image/jpeg" in response.read(4096)
        assert process.stdout is not None
        assert "brightness" in process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)
    with pytest.raises(OSError):  # the page is gone with the command
        urllib.request.urlopen(url, timeout=2)
    assert list(tmp_path.iterdir()) == []  # no frame was stored


def test_readout_shows_the_face(tmp_path: Path) -> None:
    portraits = pytest.importorskip("device.demo.portraits")
    try:
        path = portraits.portrait_path("collins")
    except Exception as exc:  # the demo extra is not installed
        pytest.skip(str(exc))
    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / "face.png").write_bytes(path.read_bytes())
    camera = {"BLINKPAY_HARDWARE__CAMERA__SOURCE": "file",
              "BLINKPAY_HARDWARE__CAMERA__PATH": str(clip),
              "BLINKPAY_HARDWARE__CAMERA__FILE_LOOP": "true"}  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    process = _start(work, "--seconds", "30", env=camera)
    try:
        _page_url(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert re.match(r"face \d+x\d+ px at \(\d+,\d+\), \d+% of width \| eyes R", line), line
        # the passive anti-spoofing cue: its verdict and real probability (a still photo
        # on a file camera may be called either; the readout shows what the models say)
        assert re.search(r"\| passive (real|spoof) [01]\.\d\d$", line.strip()), line
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_passive_readout_says_no_verdict_plainly() -> None:
    from device.cli.camera_test import Reading, passive_text
    from device.vision.passive import PassiveScore

    assert passive_text(None) == "passive -"
    weak = PassiveScore("no_verdict", None, (), 0.4, 0.0)
    assert passive_text(weak) == "passive -"  # never shown as real
    spoof = PassiveScore("spoof", 0.123, (), 0.9, 0.0)
    reading = Reading(640, 100.0, (10, 10, 110, 130), 100.0, (0.3, 0.31), "ok", passive_text(spoof))
    assert reading.line().endswith("| quality ok | passive spoof 0.12")
