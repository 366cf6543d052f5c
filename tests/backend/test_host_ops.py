"""`blinkpay-host` operability without a broker: the keys `keys` writes are the ones the
default config reads, `[mqtt] enabled = false` is honoured, `device list` / `account list`,
and every command and option has help text."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from backend.cli import _parser, main
from backend.config import HostConfig, load_host_config


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def _offline_host(folder: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """`keys` into the folder, then a host.toml with the default key names and MQTT off."""
    assert _run(capsys, "keys", str(folder))[0] == 0
    config = folder / "host.toml"
    config.write_text('host_id = "host-t"\n[mqtt]\nenabled = false\n')
    return config


def test_keys_writes_the_names_the_default_config_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, made, _ = _run(capsys, "keys", str(tmp_path / "k"))
    defaults = HostConfig()
    assert isinstance(made, dict)
    assert Path(made["signing_key_file"]).name == defaults.signing_key_file.name
    assert Path(made["pin_key_file"]).name == defaults.pin_key_file.name


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "site" / "host.toml"
    config.parent.mkdir()
    config.write_text('db_path = "data/host.db"\n')
    loaded = load_host_config(config)
    assert loaded.db_path == config.parent.resolve() / "data" / "host.db"
    assert loaded.signing_key_file == config.parent.resolve() / "signing.pem"  # defaults too


def test_mqtt_off_enrols_into_the_database_and_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _offline_host(tmp_path / "host", capsys)
    vector = np.zeros(HostConfig().dim, "<f4")
    vector[0] = 1.0
    template = tmp_path / "t.json"
    template.write_text(
        json.dumps(
            {
                "embedder_version": HostConfig().embedder_version,
                "vector_b64": base64.b64encode(vector.tobytes()).decode(),
            }
        )
    )
    code, out, err = _run(capsys, "enrol", "--config", str(config), "tok-a", "--template",
                          str(template), "--balance", "700")  # fmt: skip
    assert code == 0, err
    assert out == {"token": "tok-a", "shard_id": "default", "seq": 1, "published": False,
                   "mqtt": "disabled"}  # fmt: skip
    code, out, err = _run(capsys, "account", "set", "--config", str(config), "tok-a", "suspend")
    assert code == 0 and out["mqtt"] == "disabled", err
    code, accounts, _ = _run(capsys, "account", "list", "--config", str(config))
    assert code == 0
    assert accounts == [
        {"token": "tok-a", "shard_id": "default", "status": "suspended", "balance": 700,
         "daily_limit": 10000, "offline_allowance": 1000, "has_pin": False,
         "has_template": True}
    ]  # fmt: skip

    public = tmp_path / "host" / "signing.pub.pem"  # any Ed25519 public key will do
    argv = ("device", "add", "--config", str(config), "gate-3", str(public), "--shard", "north")
    assert _run(capsys, *argv)[0] == 0
    code, devices, _ = _run(capsys, "device", "list", "--config", str(config))
    assert code == 0 and [d["device_id"] for d in devices] == ["gate-3"]
    assert devices[0]["key_registered"] is True
    # Its shard is the operator's choice from `device add` on, before the terminal reports.
    assert devices[0]["shard_id"] == "north" and devices[0]["reported_shard_id"] is None

    for command in ("serve", "snapshot"):
        code, _, err = _run(capsys, command, "--config", str(config))
        assert code == 1 and "enabled = false" in err and "Traceback" not in err

    export = tmp_path / "gate-3.ledger.json"  # nothing synced yet: an empty, signed copy
    argv = ("ledger", "export", "--config", str(config), "gate-3", "--out", str(export))
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and out["rows"] == 0
    assert json.loads(export.read_text())["body"]["kind"] == "ledger_export"


def test_listing_without_a_database_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "host.toml"
    config.write_text("[mqtt]\nenabled = false\n")
    code, _, err = _run(capsys, "device", "list", "--config", str(config))
    assert code == 1 and "no host database" in err
    assert not (tmp_path / "blinkpay-host.db").exists()


def _parsers(parser: argparse.ArgumentParser, name: str = "blinkpay-host"):  # type: ignore[no-untyped-def]
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for name, parser in _parsers(_parser()):
        if name != "blinkpay-host" and not parser.description:
            missing.append(name)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_docs_host_md_names_every_key() -> None:
    from backend.bootfiles import BootConfig
    from backend.broker import BrokerSite
    from backend.console.settings import ConsoleSettings
    from device.net.config import MqttConfig

    text = (Path(__file__).resolve().parents[2] / "docs" / "host.md").read_text()
    sections = (MqttConfig, BootConfig, BrokerSite, ConsoleSettings)
    fields = [*HostConfig.model_fields, *(k for s in sections for k in s.model_fields)]
    keys = [k for k in fields if k not in ("mqtt", "boot", "broker", "console")]
    assert [key for key in keys if f"`{key}`" not in text] == []
