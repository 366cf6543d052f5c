"""`blinkpay demo`'s scenes through the same function the command calls, and the privacy
check on what a PIN payment leaves behind: no PIN digits in any log line or file."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.demo.scenes import DEMO_PIN, DemoReport, run_demo
from device.logs import JsonFormatter
from device.net.local_broker import mosquitto_binary


@pytest.fixture
def all_logs() -> Iterator[io.StringIO]:
    """Every log record of every logger (paho's packet logs too) at DEBUG, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = root.level, logging.getLogger("paho").level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("paho").setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        logging.getLogger("paho").setLevel(saved[1])


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


def _check(report: DemoReport) -> None:
    failed = [s.to_dict() for s in report.scenes if not s.ok]
    assert report.ok, failed
    assert len(report.scenes) == 9
    replay = next(s for s in report.scenes if "replays a video" in s.title)
    assert replay.actual == "refused (challenge_failed), no payment"
    vending = {s.title: s.actual for s in report.scenes if "machine" in s.title}
    assert len(vending) == 2  # MDB on a pty: a sale, and a jam refunded
    assert [a for t, a in vending.items() if "jams" in t] == ["voided (vend_failed), refunded"]


def _no_pin_anywhere(workdir: Path, logs: str, narration: list[str]) -> None:
    pin = DEMO_PIN.encode()
    assert DEMO_PIN not in logs
    assert not [line for line in narration if DEMO_PIN in line]
    assert files_containing(workdir, pin) == []
    # the databases really were written (the scan looked at something)
    assert list(workdir.rglob("blinkpay.db")) and list(workdir.rglob("host.db"))


def test_the_file_scan_finds_digits_when_they_are_there(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "leak.db").write_bytes(b"\x00\x01" + DEMO_PIN.encode() + b"\xff")
    assert files_containing(tmp_path, DEMO_PIN.encode()) == [tmp_path / "sub" / "leak.db"]


@pytest.mark.mqtt
def test_demo_online_scenes_and_no_pin_left_behind(tmp_path: Path, all_logs) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    narration: list[str] = []
    report = run_demo(narration.append, workdir=tmp_path, use_broker=True)
    assert report.online
    _check(report)
    pin_scene = next(s for s in report.scenes if "above the PIN limit" in s.title)
    assert pin_scene.actual == "approved online with PIN, vended"
    _no_pin_anywhere(tmp_path, all_logs.getvalue(), narration)


def test_demo_offline_scenes(tmp_path: Path, all_logs) -> None:
    narration: list[str] = []
    report = run_demo(narration.append, workdir=tmp_path, use_broker=False)
    assert not report.online
    _check(report)
    _no_pin_anywhere(tmp_path, all_logs.getvalue(), narration)
