"""First boot, from nothing but the boot-partition files: `blinkpay-host device add ID
--boot-dir` writes a card (a temp dir standing in for /boot/firmware); the card's
first-boot script provisions the terminal (its own keys) and registers its key with a real
reference host over a real mosquitto using the one-time token; the terminal then comes
online. A reused or an expired token is refused with a clear line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from backend.cli import make_keys
from backend.config import load_host_config
from backend.enrolment import issue_token
from backend.host import PaymentHost
from device.crypto.signing import load_signing_key, public_key_pem
from device.crypto.template_box import box_public_pem, load_box_key
from tests.conftest import Broker, free_port, start_site_broker

pytestmark = pytest.mark.mqtt

REPO = Path(__file__).resolve().parents[2]
DEVICE = "gate-boot"
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("BLINKPAY_", "NOTIFY_"))}
ENV["PYTHONPATH"] = str(REPO)


@dataclass
class Site:
    folder: Path
    host_toml: Path
    host: PaymentHost
    broker: Broker
    host_password: str

    def host_cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", *argv, "--config", str(self.host_toml)],
            capture_output=True, text=True, env=ENV, timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The operator's side: host keys, host.toml, the site broker `broker-config` wrote
    (no anonymous client: a card's terminal logs in with its own password), a serving host."""
    keys = tmp_path / "host"
    make_keys(keys)
    host_toml = keys / "host.toml"
    port = free_port()
    config_dir = Path(tempfile.mkdtemp(prefix="blinkpay-broker-"))
    host_toml.write_text(
        f'host_id = "host-a"\n[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\nshard_id = "station-a"\n'
        "keepalive_s = 5\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n"
        'username = "host-a"\npassword_file = "host.mqtt-password"\n'
        f'[broker]\ndir = "{config_dir}"\n'
    )
    try:
        broker = start_site_broker(host_toml, config_dir, port)
        try:
            host = PaymentHost(load_host_config(host_toml)).start()
            password = (keys / "host.mqtt-password").read_text().strip()
            try:
                yield Site(tmp_path, host_toml, host, broker, password)
            finally:
                host.stop()
        finally:
            broker.stop()
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)


def first_boot(
    card: Path, root: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The card's own script, as cloud-init's runcmd starts it; the terminal's /etc and
    /var/lib under `root`. With no `env`, blinkpay is this checkout's (the card's bundle
    installed for real: test_bundle.py)."""
    if env is None:
        env = {**ENV, "BLINKPAY_FIRSTBOOT_BLINKPAY": f"{sys.executable} -m device.cli"}
    script = card / "blinkpay" / "firstboot.sh"
    return subprocess.run(
        ["bash", str(script), str(card / "blinkpay")],
        capture_output=True, text=True, env={**env, "BLINKPAY_FIRSTBOOT_PREFIX": str(root)},
        timeout=1200, check=False,
    )  # fmt: skip


def write_card(site: Site, card: Path, *extra: str) -> None:
    made = site.host_cli("device", "add", DEVICE, "--boot-dir", str(card), *extra)
    assert made.returncode == 0, made.stderr
    written = json.loads(made.stdout)["written"]
    assert "user-data" in written and "blinkpay/mqtt.password" in written
    site.broker.reload()  # [broker] dir's passwords and acl now hold the card's terminal


def wait_online(site: Site, timeout: float) -> bool:
    """The retained status of the terminal says online (what a dashboard sees)."""
    online = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if json.loads(message.payload).get("state") == "online":
            online.set()

    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-boot-watcher")
    watcher.username_pw_set("host-a", site.host_password)  # a dashboard with the host's access
    watcher.on_message = on_message
    watcher.connect(site.broker.host, site.broker.port)
    watcher.subscribe(f"blinkpay/v1/dev/{DEVICE}/status", qos=1)
    watcher.loop_start()
    try:
        return online.wait(timeout)
    finally:
        watcher.loop_stop()
        watcher.disconnect()


def test_a_card_brings_a_terminal_online(site: Site, tmp_path: Path) -> None:
    card, root = tmp_path / "card", tmp_path / "terminal"
    write_card(site, card)
    token = (card / "blinkpay" / "enrolment.token").read_text().strip()
    booted = first_boot(card, root)
    assert booted.returncode == 0, booted.stdout + booted.stderr
    assert f"registered {DEVICE} with host host-a" in booted.stdout

    # The host holds the key the terminal made itself, and only the token's hash.
    key = load_signing_key(root / "var/lib/blinkpay/keys/device_ed25519.pem")
    row = tuple(
        site.host.db.query(
            "SELECT public_key_pem, box_key_pem, home_shard FROM devices WHERE device_id = ?",
            [DEVICE],
        )[0].values()
    )
    box = load_box_key(root / "var/lib/blinkpay/keys/device_x25519.pem")
    assert row == (public_key_pem(key), box_public_pem(box).decode(), "station-a")
    for stored in (site.folder / "host").glob("blinkpay-host.db*"):  # with the WAL
        assert token.encode() not in stored.read_bytes()
    # The secrets left the card; its log tells the story.
    assert not (card / "blinkpay" / "enrolment.token").exists()
    assert not (card / "blinkpay" / "pin.key").exists()
    assert not (card / "blinkpay" / "mqtt.password").exists()
    settings = (root / "etc/blinkpay/config.toml").read_text()
    assert f'username = "{DEVICE}"' in settings and "mqtt.password" in settings
    assert "registered" in (card / "blinkpay" / "firstboot.log").read_text()

    # A customer enrolled at the host reaches the new terminal (sealed to its X25519 key).
    vector = np.random.default_rng(7).standard_normal(site.host.config.dim).astype(np.float32)
    site.host.enrol("cust-boot", vector / np.linalg.norm(vector), shard_id="station-a")
    config = root / "etc/blinkpay/config.toml"
    terminal = subprocess.Popen(
        [sys.executable, "-m", "device.cli", "run", "--config", str(config)],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert wait_online(site, 60), "the terminal did not come online"
        assert site.host.wait_for(
            lambda h: any(a["device_id"] == DEVICE and a["version"] >= 1 for a in h.shard_acks),
            60,
        ), "the terminal did not take the shard"
    finally:
        terminal.terminate()
        terminal.wait(timeout=30)
    stats = subprocess.run(
        [sys.executable, "-m", "device.cli", "db", "stats", "--json", "--config", str(config)],
        capture_output=True, text=True, env=ENV, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(stats.stdout)["templates"] == 1  # it opened the sealed template


def test_a_reused_or_expired_token_is_refused(site: Site, tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_card(site, card)
    copy = tmp_path / "copy"
    shutil.copytree(card, copy)  # the same card written twice: the same token
    assert first_boot(card, tmp_path / "first").returncode == 0

    reused = first_boot(copy, tmp_path / "second")
    assert reused.returncode != 0
    assert "registration refused: this enrolment token was already used" in reused.stdout
    assert f"blinkpay-host device add {DEVICE} --boot-dir" in reused.stdout

    expired = tmp_path / "expired"
    write_card(site, expired)
    old = issue_token(site.host.db, DEVICE, "station-a", ttl_s=60.0, now=time.time() - 3600.0)
    (expired / "blinkpay" / "enrolment.token").write_text(old + "\n")
    refused = first_boot(expired, tmp_path / "third")
    assert refused.returncode != 0
    assert "registration refused: this enrolment token has expired" in refused.stdout


def test_no_broker_or_no_host_is_one_clear_line(broker: Broker, tmp_path: Path) -> None:
    # an anonymous throw-away broker: this test is about the messages, not who gets in
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from device.crypto.signing import public_pem
    from device.provisioning import provision

    host_key = tmp_path / "host.pub.pem"
    host_key.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    token = tmp_path / "token"
    token.write_text("A" * 43 + "\n")
    for url, says in ((broker.url, "the host did not"), ("mqtt://127.0.0.1:9", "cannot reach")):
        config = tmp_path / f"{says[:3]}.toml"
        mqtt_section = {"url": url, "backend_public_key_file": str(host_key)}
        sections = {"device": {"id": DEVICE, "data_dir": str(tmp_path / "data")}}
        provision(config, {**sections, "mqtt": mqtt_section})
        result = subprocess.run(
            [sys.executable, "-m", "device.cli", "register", "--config", str(config),
             "--token", str(token), "--wait", "2"],
            capture_output=True, text=True, env=ENV, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 1 and says in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
