"""The field engineer's hardware walk-through, run as the CLI runs it, on the sim backend.

`selftest --sim` (hardware checks among the others) is tested in tests/app/test_selftest.py."""

from __future__ import annotations

import pytest

from device.cli import main


def test_gpio_test_sim_walks_every_output_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpio-test", "--sim"]) == 0
    out = capsys.readouterr().out
    assert "all 12 seen" in out and "FAIL" not in out
