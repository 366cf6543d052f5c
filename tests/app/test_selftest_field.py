"""selftest for a field engineer: the summary counts the failures, and simulated hardware is
never "ok" on a Raspberry Pi (the board is read from an injectable device-tree file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.cli import main
from device.hw.platform import raspberry_pi_model


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[device]\ndata_dir = "{tmp_path / "data"}"\n[mqtt]\nenabled = false\n'
        '[hardware]\nbackend = "sim"\n'
    )
    return config


def test_board_detection(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert raspberry_pi_model(model) == "Raspberry Pi 5 Model B Rev 1.0"
    model.write_bytes(b"Some Other Board\0")
    assert raspberry_pi_model(model) is None
    assert raspberry_pi_model(tmp_path / "absent") is None


def test_summary_says_how_many_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Unprovisioned: no keys, so the store check fails; the rest is fine.
    code = main(["selftest", "--config", str(_config(tmp_path)), "--sim",
                 "--board-model-file", str(tmp_path / "absent")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith("selftest: FAILED: 1 of ") and "(store.keys)" in last, last


def test_sim_backend_on_a_pi_is_not_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\0")
    code = main(["selftest", "--config", str(_config(tmp_path)), "--json",
                 "--board-model-file", str(model)])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    checks = {check["name"]: check for check in report["checks"]}
    assert code == 1 and report["ok"] is False and report["failed"] >= 2
    assert checks["hw.backend"]["ok"] is False
    assert 'backend = "rpi"' in checks["hw.backend"]["detail"]
    assert "Raspberry Pi 4" in checks["hw.backend"]["detail"]
