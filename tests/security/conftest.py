"""Attacks from the site network against real processes: mosquitto (tests/conftest.py's
broker), `blinkpay-host serve` as its own process, the operator's one-shot host on the same
database, terminals built as `blinkpay run` builds its network side, and an attacker: a
plain MQTT client with keys of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.cli import make_keys
from backend.config import load_host_config
from backend.host import PaymentHost
from device.crypto.pinblock import encipher_pin_block, pan_for_token
from device.net import schemas
from tests.conftest import Broker, mosquitto_available
from tests.net.conftest import DIM, EMBEDDER, SHARD, BackendKeys, Terminal, make_terminal

PREFIX = "blinkpay/v1"
REPO = Path(__file__).resolve().parents[2]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("BLINKPAY_", "NOTIFY_"))}
ENV["PYTHONPATH"] = str(REPO)


@pytest.fixture(autouse=True)
def _need_mosquitto() -> None:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@dataclass
class Site:
    """The operator's side: host keys and config, `blinkpay-host serve` running, and a
    one-shot host (no subscriptions) for the operator's own actions on the same db."""

    folder: Path
    host_toml: Path
    keys: BackendKeys
    serve: subprocess.Popen[bytes]
    operator: PaymentHost
    broker: Broker
    terminals: list[Terminal] = field(default_factory=list)

    def terminal(
        self, device_id: str, *, register: bool = True, start: bool = True, **mqtt: Any
    ) -> Terminal:
        """A terminal's network side over a real store, registered for the shard (as
        `blinkpay-host device add ID KEY --x25519 KEY --shard station-a` does)."""
        terminal = make_terminal(
            self.broker.url, self.keys, self.folder / device_id, device_id, **mqtt
        )
        if register:
            terminal.register(self.operator)
        self.terminals.append(terminal)
        if start:
            terminal.net.start()
            assert terminal.net.link.wait_connected(10)
        return terminal

    def pin_block(self, token: str, pin: str) -> str:
        return encipher_pin_block(self.keys.pin_key, pin, pan_for_token(token), os.urandom(8)).hex()

    def host_cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", *argv, "--config", str(self.host_toml)],
            capture_output=True, text=True, env=ENV, timeout=120, check=False,
        )  # fmt: skip

    @property
    def serve_log(self) -> str:
        return (self.folder / "host" / "serve.log").read_text(errors="replace")

    def balance(self, token: str) -> int:
        return self.operator.accounts.balance(token)

    def rows(self) -> list[dict[str, Any]]:
        return self.operator.accounts.transactions()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in self.operator.db.query(sql, list(params))]


def _wait_serving(site: Site) -> None:
    """`serve` answers: a registered probe terminal asks for its shard (again every second
    until answered) and gets the snapshot only from a host that is up and subscribed."""
    probe = site.terminal("probe-0")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if site.serve.poll() is not None:
            raise RuntimeError(f"blinkpay-host serve exited: {site.serve_log[-2000:]}")
        if probe.net.shard_sync.version is not None:
            return
        time.sleep(0.1)
    raise RuntimeError(f"blinkpay-host serve did not answer in 60 s: {site.serve_log[-2000:]}")


@pytest.fixture
def site(broker: Broker, tmp_path: Path) -> Iterator[Site]:
    folder = tmp_path / "host"
    make_keys(folder)
    host_toml = folder / "host.toml"
    host_toml.write_text(
        f'host_id = "host-a"\nembedder_version = "{EMBEDDER}"\ndim = {DIM}\n'
        "auth_rate_per_s = 2.0\nauth_burst = 10\npin_max_tries = 3\n"
        f'[mqtt]\nurl = "{broker.url}"\nshard_id = "{SHARD}"\n'
        "keepalive_s = 5\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n"
    )
    config = load_host_config(host_toml)
    pin_key = bytes.fromhex((folder / "pin.key").read_text().strip())
    keys = BackendKeys(
        _signing_key(folder / "signing.pem"),
        folder / "signing.pem",
        folder / "signing.pub.pem",
        pin_key,
        folder / "pin.key",
    )
    operator = PaymentHost(config.model_copy(update={"host_id": "host-op"}), serve=False)
    operator.start()
    log = folder / "serve.log"
    with log.open("wb") as sink:
        serve = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--config", str(host_toml)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    site = Site(tmp_path, host_toml, keys, serve, operator, broker)
    try:
        _wait_serving(site)
        yield site
    finally:
        for terminal in site.terminals:
            terminal.stop()
        serve.terminate()
        try:
            serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(5)
        operator.stop()


def _signing_key(path: Path) -> Any:
    from device.crypto.signing import load_signing_key

    return load_signing_key(path)


# -- the attacker ---------------------------------------------------------------------


class Attacker:
    """A plain MQTT 5 client on the site network: reads and publishes anything the broker
    lets it (these tests run the broker open, the shipped worst case)."""

    def __init__(self, broker: Broker, name: str = "attacker") -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        assert connected.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            return
        with self._lock:
            self.seen.append((message.topic, payload))

    def listen(self, topic_filter: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic_filter, qos=1)
        assert done.wait(10)

    def publish(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        response_topic: str | None = None,
        retain: bool = False,
    ) -> None:
        props = Properties(PacketTypes.PUBLISH)
        if response_topic:
            props.ResponseTopic = response_topic
            props.CorrelationData = b"x"
        info = self.client.publish(
            topic, schemas.dumps(payload), qos=1, retain=retain, properties=props
        )
        info.wait_for_publish(10)

    def messages(self, suffix: str = "") -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(t, p) for t, p in self.seen if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def attacker(broker: Broker) -> Iterator[Attacker]:
    made = Attacker(broker)
    yield made
    made.close()
