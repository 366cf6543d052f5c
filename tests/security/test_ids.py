"""Identifiers are checked where they enter: one validator (the contract's Id pattern) for
every device and shard id a `blinkpay-host` command takes, and no traceback on any input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.cli import main
from device.crypto.signing import public_pem
from device.net.schemas import ID_PATTERN, check_id, load_spec, valid_id

REPO = Path(__file__).resolve().parents[2]
BAD_IDS = ["gate/x", "+", "#", "g" * 80, "gate x", "", "-gate", "gate\n"]


def test_the_one_pattern_is_the_contracts() -> None:
    assert load_spec()["components"]["schemas"]["Id"]["pattern"] == ID_PATTERN
    assert valid_id("gate-01") and valid_id("g" * 64)
    for bad in BAD_IDS:
        assert not valid_id(bad)
        with pytest.raises(ValueError, match="letters, digits"):
            check_id(bad, "device id")


@pytest.fixture
def host_toml(tmp_path: Path) -> Path:
    assert main(["keys", str(tmp_path / "host")]) == 0
    path = tmp_path / "host" / "host.toml"
    path.write_text('db_path = "host.db"\n[mqtt]\nenabled = false\n')
    return path


@pytest.mark.parametrize("bad", BAD_IDS)
def test_device_add_refuses_a_device_id_off_the_contract(
    bad: str, host_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "gate.pub"
    pub.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(SystemExit) as exit_:
        main(["device", "add", "--config", str(host_toml), bad, str(pub)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "device id" in err and "letters, digits, - and _" in err
    assert not (host_toml.parent / "host.db").exists()  # nothing registered


@pytest.mark.parametrize(
    "argv",
    [
        ["device", "add", "gate-01", "--boot-dir", "card", "--shard", "a/b"],
        ["device", "add", "gate-01", "key.pub", "--shard", "#"],
        ["enrol", "tok", "--template", "t.json", "--shard", "+"],
        ["account", "list", "--shard", "s" * 65],
        ["snapshot", "--shard", "a b"],
        ["ledger", "export", "gate/x", "--out", "x.json"],
    ],
)
def test_every_command_checks_its_ids(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "is not valid: 1 to 64 letters" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["console", "--listen", "host:notaport"],
        ["console", "--listen", "127.0.0.1:99999"],
        ["console", "--listen", "nocolon"],
        ["broker-config", "out", "--listen", ":1883"],
        ["device", "add", "gate/x", "key.pub"],
        ["operator", "role", "ada", "superuser"],
        ["device", "add", "gate-01", "--ttl", "soon", "--boot-dir", "x"],
    ],
)
def test_bad_input_is_one_line_and_exit_2_never_a_traceback(argv: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLINKPAY_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", *argv],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("blinkpay-host ")


def test_the_demo_checks_its_console_address_before_it_runs() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLINKPAY_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "device.cli", "demo", "--console", "--console-listen", "h:x"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is not HOST:PORT" in done.stderr.strip().splitlines()[-1]


def test_device_add_issues_a_broker_password_once(
    host_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import stat

    from backend.broker import broker_users, verify_hash
    from backend.db import HostDb

    pub = tmp_path / "gate.pub"
    pub.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    argv = ["device", "add", "--config", str(host_toml), "gate-01", str(pub)]

    def add(*extra: str) -> dict[str, object]:
        assert main([*argv, *extra]) == 0
        return json.loads(capsys.readouterr().out)

    first = add("--shard", "north")
    secret = tmp_path / "gate-01.mqtt-password"
    assert first["broker_password"] == "new" and first["password_file"] == str(secret)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text().strip()
    assert add("--shard", "south")["broker_password"] == "kept"  # the terminal keeps working
    db = HostDb(host_toml.parent / "host.db")
    try:
        (user,) = broker_users(db)
        assert (user["username"], user["role"], user["shard_id"]) == (
            "gate-01",
            "terminal",
            "south",
        )
        assert verify_hash(password, user["password_hash"])  # only the hash is kept
        assert password not in (host_toml.parent / "host.db").read_bytes().decode("latin-1")
    finally:
        db.close()
    assert main(["device", "list", "--config", str(host_toml)]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["device_id"] == "gate-01" and listed["broker_credential"] is True
    out = tmp_path / "rotated"
    assert add("--new-mqtt-password", "--mqtt-password-out", str(out))["broker_password"] == "new"
    assert out.read_text().strip() != password


def test_the_terminals_broker_credential_is_checked_like_a_key(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from device.config import load_config
    from device.errors import BlinkpayError
    from device.net.config import MqttConfig
    from device.provisioning import key_problems, provision

    with pytest.raises(ValidationError, match="go together"):
        MqttConfig(username="gate-01")
    with pytest.raises(ValidationError):
        MqttConfig(username="gate/x", password_file=tmp_path / "pw")
    host_key = tmp_path / "host.pub"
    host_key.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    sections = {
        "device": {"id": "gate-07", "data_dir": str(tmp_path / "data")},
        "mqtt": {"url": "mqtt://127.0.0.1:1883", "backend_public_key_file": str(host_key)},
    }
    done = provision(tmp_path / "t.toml", sections, mqtt_password="s3cret-Pass_word")
    mqtt = done.config.mqtt
    assert mqtt.username == "gate-07" and mqtt.password_file is not None
    assert mqtt.password_file.read_text() == "s3cret-Pass_word\n"
    assert key_problems(load_config(tmp_path / "t.toml", env={})) == []
    mqtt.password_file.chmod(0o644)  # readable by others: refused like a key
    problems = key_problems(load_config(tmp_path / "t.toml", env={}))
    assert len(problems) == 1 and problems[0].startswith("mqtt.password_file:")
    assert "chmod 600" in problems[0]
    with pytest.raises(BlinkpayError, match="one word"):
        provision(tmp_path / "t.toml", sections, mqtt_password="two words")
