"""Only terminals reach the broker, each to its own topics and its shard's: mosquitto running
what `blinkpay-host broker-config` wrote, attacked with plain paho clients (issue 19)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from backend.broker import mosquitto_hash, verify_hash
from device.net.client import MqttLink
from device.net.config import MqttConfig
from device.net.topics import shared
from tests.security.acl.conftest import PREFIX, Site

pytestmark = pytest.mark.mqtt

WAIT_S = 20.0  # generous: a loaded runner; every wait ends on an event, not on the clock


class Peer:
    """A paho MQTT 5 client that records what it receives and how the broker answered."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        tls: tuple[Path, Path | None, Path | None] | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"peer-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls is not None:  # (CA, client certificate, its key)
            ca, cert, key = tls
            self.client.tls_set(str(ca), None if cert is None else str(cert), key and str(key))
        self.connack: ReasonCode | None = None
        self.answered = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.got = threading.Condition()
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.suback = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.pubacks: dict[int, ReasonCode] = {}
        self.puback = threading.Condition()
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = lambda *_a: self.answered.set()
        try:
            self.client.connect("127.0.0.1", port, keepalive=10)
        except (OSError, ValueError):  # a TLS handshake refused: no CONNACK at all
            return
        self.client.loop_start()
        assert self.answered.wait(WAIT_S), "no CONNACK"

    @classmethod
    def at(cls, port: int, username: str | None, password: str | None) -> Peer:
        return cls(port, username, password)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connack = reason
        self.answered.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self.got:
            self.messages.append((message.topic, bytes(message.payload)))
            self.got.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
        with self.suback:
            self.subacks[mid] = codes
            self.suback.notify_all()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, *filters: str) -> None:
        _rc, mid = self.client.subscribe([(f, 1) for f in filters])
        with self.suback:
            assert self.suback.wait_for(lambda: mid in self.subacks, WAIT_S), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """QoS 1; the PUBACK's reason code (MQTT 5: 135 "Not authorized" for a denied one)."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(WAIT_S)
        with self.puback:
            assert self.puback.wait_for(lambda: info.mid in self.pubacks, WAIT_S), "no PUBACK"
            return self.pubacks[info.mid]

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self.puback:
            self.pubacks[mid] = reason
            self.puback.notify_all()

    def wait_for(self, payload: bytes, copies: int = 1) -> list[tuple[str, bytes]]:
        """Every message up to `copies` of `payload` (the barrier the test sent last)."""
        with self.got:
            assert self.got.wait_for(
                lambda: sum(p == payload for _t, p in self.messages) >= copies, WAIT_S
            ), f"{payload!r} never arrived"
            return list(self.messages)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def peers(site: Site) -> Any:
    made: list[Peer] = []

    def make(username: str | None = None, password: str | None = None) -> Peer:
        peer = Peer(site.broker.port, username, password)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


def test_an_anonymous_client_cannot_connect_nor_subscribe_to_everything(
    site: Site, peers: Any
) -> None:
    anonymous = peers()
    assert not anonymous.accepted  # refused at CONNECT: it never gets to SUBSCRIBE '#'
    wrong = peers("gate-a", "not-its-password")
    assert not wrong.accepted
    stranger = peers("gate-z", "whatever")
    assert not stranger.accepted
    # the host (its own user) does get in, and sees what terminals publish
    host = peers(site.host_user, site.host_password)
    assert host.accepted


def test_terminal_a_cannot_publish_on_terminal_b_topics(site: Site, peers: Any) -> None:
    host = peers(site.host_user, site.host_password)
    host.subscribe(f"{PREFIX}/dev/#", f"{PREFIX}/shard/#", shared(f"{PREFIX}/dev/+/tx"))
    gate_a = peers("gate-a", site.passwords["gate-a"])
    assert gate_a.accepted
    forged = [
        f"{PREFIX}/dev/gate-b/{tail}"
        for tail in ("tx", "auth/req", "status", "shard/ack", "config/state", "register/req")
    ]
    for topic in forged:
        assert gate_a.publish(topic, b"forged").is_failure, topic
    # its own topics in the contract's direction only: no host answer to itself either
    gate_a.publish(f"{PREFIX}/dev/gate-a/auth/resp", b"self-answer")
    gate_a.publish(f"{PREFIX}/shard/shard-a/delta", b"fake-delta")
    # Home Assistant discovery: its own entries only (the broker's MQTT 5 PUBACK says so)
    assert gate_a.publish("homeassistant/sensor/gate-b_fps/config", b"forged").is_failure
    assert not gate_a.publish("homeassistant/sensor/gate-a_fps/config", b"own").is_failure
    gate_a.publish(f"{PREFIX}/dev/gate-a/tx", b"own-row")  # sent last: the barrier
    # the genuine row reaches the host on the plain and on the shared subscription
    seen = host.wait_for(b"own-row", copies=2)
    payloads = [payload for _topic, payload in seen]
    assert b"forged" not in payloads
    assert b"self-answer" not in payloads
    assert b"fake-delta" not in payloads


def test_terminal_a_reads_its_shard_and_its_topics_only(site: Site, peers: Any) -> None:
    gate_a = peers("gate-a", site.passwords["gate-a"])
    gate_a.subscribe(f"{PREFIX}/shard/#", f"{PREFIX}/dev/gate-b/#", f"{PREFIX}/dev/gate-a/#", "#")
    host = peers(site.host_user, site.host_password)
    host.publish(f"{PREFIX}/shard/shard-b/delta", b"shard-b-delta")
    host.publish(f"{PREFIX}/shard/shard-b/snapshot", b"shard-b-snapshot")
    host.publish(f"{PREFIX}/dev/gate-b/auth/resp", b"b-answer")
    host.publish(f"{PREFIX}/dev/gate-b/tx/ack", b"b-ack")
    host.publish(f"{PREFIX}/dev/gate-a/tx/ack", b"a-ack")
    host.publish(f"{PREFIX}/shard/shard-a/delta", b"shard-a-delta")  # the barrier
    seen = gate_a.wait_for(b"shard-a-delta")
    payloads = {payload for _topic, payload in seen}
    assert payloads == {b"a-ack", b"shard-a-delta"}


def test_the_terminals_own_link_logs_in_with_its_credential(site: Site, tmp_path: Path) -> None:
    """device.net's MqttLink with [mqtt] username/password_file (what provision writes)."""
    secret = tmp_path / "mqtt.password"
    secret.write_text(site.passwords["gate-b"] + "\n")
    secret.chmod(0o600)
    base = {"url": site.broker.url, "keepalive_s": 5, "reconnect_min_s": 0.05}
    good = MqttLink(
        MqttConfig(**base, username="gate-b", password_file=secret),
        "gate-b",
        status_topic=f"{PREFIX}/dev/gate-b/status",
    )
    bare = MqttLink(MqttConfig(**base), "gate-b-bare")
    good.start()
    bare.start()
    try:
        assert good.wait_connected(WAIT_S)
        assert not bare.wait_connected(2.0)  # refused: no credential (bounded negative wait)
    finally:
        good.stop()
        bare.stop()


def test_the_hash_is_mosquittos_format() -> None:
    stored = mosquitto_hash("s3cret", salt=b"0123456789ab")
    kind, rounds, salt, digest = stored.split("$")[1:]
    assert (kind, rounds, salt) == ("7", "101", "MDEyMzQ1Njc4OWFi")
    assert verify_hash("s3cret", stored) and not verify_hash("s3creT", stored)
    assert len(digest) == 88  # base64 of a 64-byte SHA-512 digest


def test_the_demo_runs_on_the_site_configuration(tmp_path: Path) -> None:
    """`blinkpay demo`'s broker is broker-config's: the demo's host and terminal log in with
    their own passwords, and an anonymous client is refused."""
    from device.demo.rig import DemoRig
    from device.net.local_broker import mosquitto_binary

    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    rig = DemoRig(tmp_path / "demo", narrate=lambda _line: None)
    try:
        assert rig.broker is not None and rig.parts is not None and rig.parts.net is not None
        assert rig.parts.net.link.connected  # the terminal with its own credential
        assert "allow_anonymous false" in rig.broker.config_path.read_text()
        refused = Peer.at(rig.broker.port, None, None)
        assert not refused.accepted
        refused.close()
    finally:
        rig.close()


def test_mutual_tls_from_broker_config(site: Site, pki: Any, tmp_path: Path, capsys: Any) -> None:
    """`broker-config --certfile --keyfile --cafile --require-certificate`: only a client with
    a certificate of the site CA gets in, as the user its CN names, under the same ACLs."""
    import json
    import shutil
    import tempfile

    from backend.cli import main
    from tests.conftest import free_port, start_mosquitto

    folder = Path(tempfile.mkdtemp(prefix="blinkpay-broker-tls-"))
    try:
        port = free_port()
        capsys.readouterr()
        assert main([
            "broker-config", "--config", str(site.host_toml), str(folder),
            "--listen", f"127.0.0.1:{port}", "--certfile", str(pki.server_cert),
            "--keyfile", str(pki.server_key), "--cafile", str(pki.ca), "--require-certificate",
        ]) == 0  # fmt: skip
        assert json.loads(capsys.readouterr().out)["tls"] is True
        broker = start_mosquitto(folder / "mosquitto.conf", port)
        try:
            bare = Peer(port, None, None, (pki.ca, None, None))
            assert not bare.accepted  # no client certificate: no connection
            bare.close()
            host = Peer(port, None, None, (pki.ca, pki.host_cert, pki.host_key))  # CN host-a
            gate = Peer(port, None, None, (pki.ca, pki.client_cert, pki.client_key))  # gate-01
            try:
                assert host.accepted and gate.accepted
                host.subscribe(f"{PREFIX}/dev/#")
                gate.publish(f"{PREFIX}/dev/gate-a/tx", b"forged")
                gate.publish(f"{PREFIX}/dev/gate-01/tx", b"own-row")
                seen = [payload for _topic, payload in host.wait_for(b"own-row")]
                assert b"forged" not in seen
            finally:
                host.close()
                gate.close()
        finally:
            broker.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_whole_payment_flow_runs_under_the_acls(tmp_path: Path, backend_keys: Any) -> None:
    """Everything the contract needs passes the ACLs: boot snapshot, deltas and their acks,
    authorization with a PIN, the signed row and its ack, telemetry (tests/net/test_e2e.py's
    flow), with the host and the terminal each on its own broker user."""
    import shutil
    import tempfile

    from backend.broker import Listener, issue_password, write_password, write_site_config
    from backend.db import HostDb
    from tests.conftest import free_port, mosquitto_available, start_mosquitto
    from tests.net.conftest import SHARD, make_host, make_terminal
    from tests.net.test_e2e import run_payment_flow

    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    port, folder = free_port(), tmp_path / "host"
    config_dir = Path(tempfile.mkdtemp(prefix="blinkpay-broker-"))
    db = HostDb(folder / "host.db")
    try:
        write_password(folder / "host.pw", issue_password(db, "host-a", "host", None))
        write_password(tmp_path / "gate.pw", issue_password(db, "gate-01", "terminal", SHARD))
        write_site_config(db, PREFIX, config_dir, Listener("127.0.0.1", port), "mosquitto")
    finally:
        db.close()
    broker = start_mosquitto(config_dir / "mosquitto.conf", port)
    try:
        host = make_host(
            broker.url, backend_keys, folder, username="host-a", password_file=folder / "host.pw"
        ).start()
        terminal = make_terminal(
            broker.url,
            backend_keys,
            tmp_path / "dev",
            username="gate-01",
            password_file=str(tmp_path / "gate.pw"),
        )
        try:
            run_payment_flow(host, terminal, backend_keys)
        finally:
            terminal.stop()
            host.stop()
    finally:
        broker.stop()
        shutil.rmtree(config_dir, ignore_errors=True)


def test_a_dashboard_user_reads_status_and_telemetry_only(
    site: Site, peers: Any, capsys: Any
) -> None:
    import json

    from backend.cli import main

    capsys.readouterr()
    argv = ["broker-config", "--config", str(site.host_toml), str(site.config_dir)]
    assert main([*argv, "--monitor", "dash"]) == 0
    written = json.loads(capsys.readouterr().out)["monitors"]["dash"]
    password = Path(written).read_text().strip()
    site.broker.reload()  # SIGHUP: mosquitto reads passwords and acl again
    dash = None
    for _ in range(200):  # the reload is asynchronous: until the new user gets in (20 s)
        dash = peers("dash", password)
        if dash.accepted:
            break
        threading.Event().wait(0.1)
    assert dash is not None and dash.accepted
    dash.subscribe("#")
    gate_a = peers("gate-a", site.passwords["gate-a"])
    gate_a.publish(f"{PREFIX}/dev/gate-a/tx", b"a-row")
    gate_a.publish(f"{PREFIX}/dev/gate-a/auth/req", b"a-request")
    gate_a.publish("homeassistant/sensor/gate-a_fps/config", b"a-discovery")
    gate_a.publish(f"{PREFIX}/dev/gate-a/status", b"a-status")
    gate_a.publish(f"{PREFIX}/dev/gate-a/telemetry", b"a-telemetry")  # the barrier
    seen = {payload for _topic, payload in dash.wait_for(b"a-telemetry")}
    assert seen == {b"a-discovery", b"a-status", b"a-telemetry"}
    assert dash.publish(f"{PREFIX}/dev/gate-a/config/set", b"forged").is_failure
    assert main([*argv, "--monitor", "gate-a"]) == 1  # a terminal is no dashboard
