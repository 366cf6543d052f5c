"""`blinkpay selftest` on a provisioned terminal: hardware, models, store and broker."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from device.cli import main
from device.config import load_config
from device.paths import default_models_dir
from device.store.terminal_store import open_store


def _provision(tmp_path: Path, broker: str) -> Path:
    config_path = tmp_path / "config.toml"
    argv = ["provision", "--config-out", str(config_path), "--data-dir", str(tmp_path / "data")]
    assert main([*argv, "--device-id", "gate-1", "--broker", broker, "--sim", "--json"]) == 0
    return config_path


def _selftest(config_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["selftest", "--config", str(config_path), "--sim", "--json"])
    report = json.loads(capsys.readouterr().out)
    return code, {check["name"]: check for check in report["checks"]}


@pytest.mark.mqtt
def test_every_check_ok_on_a_provisioned_simulated_terminal(
    tmp_path: Path, broker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = _provision(tmp_path, broker.url)
    config = load_config(config_path, env={})
    open_store(config.store, config.device.data_dir).close()  # as the service's first start does
    code, checks = _selftest(config_path, capsys)
    assert code == 0, [c for c in checks.values() if not c["ok"]]
    names = {"hw.relay", "hw.keypad", "hw.camera", "models.embedder_mobilefacenet", "mqtt.broker"}
    assert names <= set(checks)
    assert any(name.startswith("store.") for name in checks)
    assert all(check["ok"] for check in checks.values())


def test_a_corrupted_model_and_a_missing_broker_fail_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config_path = _provision(tmp_path, f"mqtt://127.0.0.1:{port}")
    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models)
    embedder = next(models.glob("mobilefacenet*.tflite"))  # the default embedder
    data = bytearray(embedder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    embedder.write_bytes(bytes(data))
    monkeypatch.setenv("BLINKPAY_VISION__MODELS_DIR", str(models))
    code, checks = _selftest(config_path, capsys)
    assert code == 1
    assert not checks["models.embedder_mobilefacenet"]["ok"]
    assert embedder.name in checks["models.embedder_mobilefacenet"]["detail"]
    assert checks["models.detector"]["ok"]
    assert not checks["mqtt.broker"]["ok"] and str(port) in checks["mqtt.broker"]["detail"]
    assert checks["store.database"]["ok"]  # provisioned; the service makes it at first start
    assert all(check["ok"] for name, check in checks.items() if name.startswith("hw."))
