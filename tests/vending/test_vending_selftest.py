"""selftest and gpio-test report the vending transport: its port, and the VMC heard on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.cli import main
from device.clock import SystemClock
from device.config import Config, config_from_mapping
from device.provisioning import provision
from device.selftest.vending import describe, vending_checks
from device.vending.vmc_machine import VmcMachine
from device.vending.vmc_sim import PtyVmc
from tests.vending.vend_stack import Pty, open_pty


def vending_config(port: str, **vending: object) -> Config:
    section = {"controller": "mdb-uart", "port": port, "framing": "stuffed", **vending}
    return config_from_mapping({"device": {"mode": "vending"}, "vending": section})


@pytest.fixture
def pty() -> Pty:
    made = open_pty()
    yield made  # type: ignore[misc]
    made.close()


def test_a_turnstile_has_no_vending_check() -> None:
    checks = vending_checks(config_from_mapping({}), True, SystemClock())
    assert [(c.name, c.ok) for c in checks] == [("vending.controller", True)]


def test_the_port_opens_and_the_machine_is_heard(pty: Pty) -> None:
    machine = VmcMachine(PtyVmc(pty.master)).start()
    try:
        checks = vending_checks(vending_config(pty.path, cpu=0), True, SystemClock(), 10.0)
    finally:
        machine.stop()
    by_name = {c.name: c for c in checks}
    assert by_name["vending.controller"].ok
    assert "mdb-uart on " + pty.path in by_name["vending.controller"].detail
    assert "bus thread on cpu 0" in by_name["vending.controller"].detail
    assert by_name["vending.machine"].ok and "ReaderEnabled" in by_name["vending.machine"].detail


def test_a_silent_bus_and_a_missing_port_fail_by_name(pty: Pty, tmp_path: Path) -> None:
    silent = vending_checks(vending_config(pty.path), True, SystemClock(), 0.3)
    assert [(c.name, c.ok) for c in silent] == [
        ("vending.controller", True),
        ("vending.machine", False),
    ]
    assert "no VMC heard" in silent[1].detail
    missing = vending_checks(vending_config(str(tmp_path / "ttyNONE")), True, SystemClock())
    assert [(c.name, c.ok) for c in missing] == [("vending.controller", False)]


def test_the_hat_and_its_tuning_are_described() -> None:
    config = vending_config("/dev/ttyAMA0", controller="mdb-hat", framing="parity")
    assert "Qibixx MDB Pi HAT" in describe(config.vending)
    assert "115200 baud" in describe(config.vending)
    assert "default scheduling" in describe(vending_config("/dev/serial0").vending)


def test_gpio_test_walks_the_vending_link(
    pty: Pty, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sections = {
        "device": {"mode": "vending", "data_dir": str(tmp_path / "data")},
        "hardware": {"backend": "sim"},
        "mqtt": {"enabled": False},
        "vending": {"controller": "mdb-uart", "port": pty.path, "framing": "stuffed"},
    }
    provision(tmp_path / "config.toml", sections)
    machine = VmcMachine(PtyVmc(pty.master)).start()
    try:
        code = main(["gpio-test", "--sim", "--config", str(tmp_path / "config.toml")])
    finally:
        machine.stop()
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Vending machine link: mdb-uart on {pty.path}" in out
    assert "PASS  vending machine" in out
