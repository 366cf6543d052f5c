from __future__ import annotations

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
