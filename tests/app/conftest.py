"""Fixtures for the terminal-as-a-service tests: a provisioned terminal on simulated hardware."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from device.config import Config, load_config
from device.provisioning import provision


@dataclass(frozen=True)
class SimTerminal:
    config_path: Path
    config: Config

    @property
    def data_dir(self) -> Path:
        return Path(self.config.device.data_dir)


@pytest.fixture
def sim_terminal(tmp_path: Path) -> SimTerminal:
    """Keys and a config for `blinkpay run --sim` with MQTT off (offline rules)."""
    sections = {
        "device": {"id": "test-gate", "data_dir": str(tmp_path / "data"), "log_format": "json"},
        "hardware": {"backend": "sim", "camera": {"source": "synthetic", "fps": 10.0}},
        "mqtt": {"enabled": False},
    }
    config_path = tmp_path / "config.toml"
    provision(config_path, sections)
    return SimTerminal(config_path, load_config(config_path, env={}))


@pytest.fixture
def blinkpay_command() -> list[str]:
    """The console script of this venv (the one `install.sh --dev` makes)."""
    script = Path(sys.executable).with_name("blinkpay")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "device.cli"]
