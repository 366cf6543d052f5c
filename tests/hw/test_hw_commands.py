"""The field engineer's hardware commands, run as the CLI runs them, on the sim backend."""

from __future__ import annotations

import json

import pytest

from device.cli import main


def test_selftest_sim_json_reports_every_hardware_check_ok(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["selftest", "--sim", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    hardware = [check for check in report["checks"] if check["name"].startswith("hw.")]
    names = {check["name"] for check in hardware}
    assert {"hw.gpio", "hw.relay", "hw.keypad", "hw.buzzer", "hw.camera"} <= names
    assert all(check["ok"] for check in hardware), hardware


def test_gpio_test_sim_walks_every_output_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpio-test", "--sim"]) == 0
    out = capsys.readouterr().out
    assert "all 12 seen" in out and "FAIL" not in out
