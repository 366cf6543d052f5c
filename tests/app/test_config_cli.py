from __future__ import annotations

import os
from pathlib import Path

import pytest

from device.cli import main
from device.config import ConfigError, load_config


def test_defaults_validate() -> None:
    config = load_config(None, env={})
    assert config.payment.pin_over >= 0
    assert config.device.mode == "turnstile"


def test_env_override_is_applied_and_validated() -> None:
    config = load_config(None, env={"BLINKPAY_PAYMENT__PIN_OVER": "1500"})
    assert config.payment.pin_over == 1500
    with pytest.raises(ConfigError) as err:
        load_config(None, env={"BLINKPAY_DEVICE__MODE": "bus"})
    assert "device.mode" in str(err.value) and "'bus'" in str(err.value)


def test_config_check_names_key_value_and_allowed(tmp_path: Path, capsys) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[device]\nmode = "bus"\n[payment]\npin_ovr = 3\n')
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "device.mode = 'bus'" in err and "'turnstile' or 'vending'" in err
    assert "payment.pin_ovr: unknown key" in err


def test_config_check_reports_bad_toml_and_missing_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[device\n")
    assert main(["config", "check", str(path)]) == 1
    assert main(["config", "check", str(tmp_path / "absent.toml")]) == 1
    err = capsys.readouterr().err
    assert "not valid TOML" in err and "file not found" in err


def test_unknown_command_is_refused(capsys) -> None:
    assert main(["fly"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_config_show_prints_toml_a_config_file_takes_and_json_on_request(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import tomllib

    for name in [n for n in os.environ if n.startswith("BLINKPAY_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "config.toml"
    path.write_text('[device]\nid = "gate-3"\n[payment]\npin_over = 1200\n')
    assert main(["config", "show", "--config", str(path)]) == 0
    shown = capsys.readouterr().out
    values = tomllib.loads(shown)  # TOML, not JSON
    assert values["device"]["id"] == "gate-3" and values["payment"]["pin_over"] == 1200
    again = tmp_path / "again.toml"  # what it prints is a config file that validates
    again.write_text(shown)
    assert load_config(again, env={}).model_dump() == load_config(path, env={}).model_dump()
    assert main(["config", "show", "--config", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"]["id"] == "gate-3"
