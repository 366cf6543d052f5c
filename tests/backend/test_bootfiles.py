"""`blinkpay-host device add ID --boot-dir DIR`: the card's files, cloud-init user-data
valid for `cloud-init schema`, secrets kept private, and refusals before a token is
issued."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from backend.cli import main, make_keys

CLOUD_INIT = shutil.which("cloud-init")


def _host(folder: Path, extra: str = "") -> Path:
    make_keys(folder)
    toml = folder / "host.toml"
    toml.write_text(
        'host_id = "host-a"\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\nshard_id = "north"\n' + extra
    )
    return toml


def _add(capsys: pytest.CaptureFixture[str], toml: Path, *argv: str) -> tuple[int, str]:
    code = main(["device", "add", *argv, "--config", str(toml)])
    out, err = capsys.readouterr()
    return code, out if code == 0 else err


def test_a_card_has_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "ssh.pub"
    keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJb0 engineer@laptop\n")
    toml = _host(tmp_path / "host", f'[boot]\nssh_authorized_keys_file = "{keys}"\n')
    card = tmp_path / "card"
    code, out = _add(capsys, toml, "gate-12", "--boot-dir", str(card))
    assert code == 0, out
    names = set(json.loads(out)["written"])
    folder = {"firstboot.sh", "terminal.env", "enrolment.token", "host.pub.pem", "pin.key"}
    assert {"user-data", *(f"blinkpay/{name}" for name in folder)} <= names
    data = (card / "user-data").read_text()
    assert data.startswith("#cloud-config\n")
    document = yaml.safe_load(data)
    assert document["hostname"] == "gate-12"
    assert document["users"][0]["ssh_authorized_keys"] == [keys.read_text().strip()]
    assert document["runcmd"] == [
        ["bash", "/boot/firmware/blinkpay/firstboot.sh", "/boot/firmware/blinkpay"]
    ]
    env = (card / "blinkpay" / "terminal.env").read_text()
    assert "DEVICE_ID=gate-12\n" in env and "SHARD_ID=north\n" in env
    for secret in ("enrolment.token", "pin.key"):
        assert stat.S_IMODE((card / "blinkpay" / secret).stat().st_mode) == 0o600


@pytest.mark.skipif(
    CLOUD_INIT is None, reason="cloud-init not installed (apt-get install cloud-init)"
)
def test_user_data_passes_cloud_init_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "card"
    assert _add(capsys, _host(tmp_path / "host"), "gate-12", "--boot-dir", str(card))[0] == 0

    def schema(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLOUD_INIT, "schema", "--config-file", str(path)],
                              capture_output=True, text=True, check=False)  # fmt: skip

    checked = schema(card / "user-data")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "broken"  # the validator is not a rubber stamp
    broken.write_text(
        (card / "user-data").read_text().replace("ssh_pwauth: false", "ssh_pwauth: 7")
    )
    assert schema(broken).returncode != 0


def test_refusals_issue_no_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = _host(tmp_path / "host", '[boot]\nbroker_url = "mqtts://broker.site:8883"\n')
    card = tmp_path / "card"
    code, err = _add(capsys, toml, "gate-12", "--boot-dir", str(card))
    assert code != 0 and "needs its CA" in err and "Traceback" not in err
    code, err = _add(capsys, _host(tmp_path / "h2"), "gate-12", "--boot-dir", str(card),
                     "--bundle", str(tmp_path / "nope.tar.gz"))  # fmt: skip
    assert code != 0 and "nope.tar.gz: no such file" in err
    code, err = _add(capsys, toml, "gate-12")
    assert code != 0 and "PUBLIC_KEY file, or --boot-dir" in err
    code, err = _add(capsys, toml, "gate-12", "--boot-dir", str(card), "--ttl", "0")
    assert code != 0 and "--ttl 0.0" in err
    assert not card.exists()


def test_wifi_goes_into_network_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    psk = tmp_path / "wifi.psk"
    psk.write_text("correct horse battery\n")
    toml = _host(tmp_path / "host", f'[boot]\nwifi_ssid = "Site Net"\nwifi_psk_file = "{psk}"\n')
    card = tmp_path / "card"
    code, out = _add(capsys, toml, "gate-12", "--boot-dir", str(card))
    assert code == 0, out
    network = yaml.safe_load((card / "network-config").read_text())["network"]
    assert network["version"] == 2
    wlan0 = network["wifis"]["wlan0"]
    assert wlan0["access-points"] == {"Site Net": {"password": "correct horse battery"}}
    assert wlan0["dhcp4"] is True and wlan0["regulatory-domain"] == "GB"
    assert stat.S_IMODE((card / "network-config").stat().st_mode) == 0o600
    psk.write_text("short\n")
    code, err = _add(capsys, toml, "gate-13", "--boot-dir", str(tmp_path / "card2"))
    assert code != 0 and "8 to 63 characters" in err
    wired = tmp_path / "wired"
    assert _add(capsys, _host(tmp_path / "h2"), "gate-14", "--boot-dir", str(wired))[0] == 0
    assert not (wired / "network-config").exists()
