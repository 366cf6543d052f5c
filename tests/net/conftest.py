"""Fixtures for the MQTT tests: backend keys, a TLS PKI, a reference host, terminals with
real stores, and a recorder that captures every message on the broker for schema checks."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import uuid6
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion

from backend.config import HostConfig
from backend.host import PaymentHost
from device.config import Config, config_from_mapping
from device.crypto.signing import (
    load_signing_key,
    private_pem,
    public_pem,
    sign_document,
    write_private_file,
)
from device.crypto.template_box import box_public_pem, generate_box_key, load_box_key
from device.net import schemas
from device.net.service import NetService
from device.net.shard_sync import TemplateShardPort
from device.net.topics import message_for_topic
from device.store.keys import provision_keys
from device.store.terminal_store import Store, open_store, store_key_paths
from tests.conftest import Broker, mosquitto_available

PREFIX = "blinkpay/v1"
SHARD = "station-a"
EMBEDDER = "test-embedder-v1"
DIM = 8


@pytest.fixture(autouse=True)
def _need_mosquitto(request: pytest.FixtureRequest) -> None:
    """Tests marked mqtt skip with the reason where mosquitto is not installed."""
    if request.node.get_closest_marker("mqtt") and not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")


@dataclass
class BackendKeys:
    signing_key: Ed25519PrivateKey
    signing_key_file: Path
    public_key_file: Path
    pin_key: bytes
    pin_key_file: Path


@pytest.fixture
def backend_keys(tmp_path: Path) -> BackendKeys:
    folder = tmp_path / "backend-keys"
    folder.mkdir()
    key = Ed25519PrivateKey.generate()
    write_private_file(folder / "signing.pem", private_pem(key))
    (folder / "signing.pub.pem").write_bytes(public_pem(key.public_key()))
    pin_key = os.urandom(16)
    (folder / "pin.key").write_text(pin_key.hex())
    return BackendKeys(
        key, folder / "signing.pem", folder / "signing.pub.pem", pin_key, folder / "pin.key"
    )


# -- TLS ------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # CN gate-01: the terminal
    client_key: Path
    host_cert: Path  # CN host-a: the reference host (and the test's recorder)
    host_key: Path

    def broker_conf(self) -> str:
        """Mutual TLS: no certificate from the test CA, no connection; the CN is the user."""
        return (
            f"cafile {self.ca}\ncertfile {self.server_cert}\nkeyfile {self.server_key}\n"
            "require_certificate true\nuse_identity_as_username true\n"
        )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="session")
def pki() -> Iterator[Pki]:
    """A throwaway CA, a server certificate for 127.0.0.1 and client certificates."""
    # Not under pytest's 0700 tmp tree: mosquitto started as root reads its TLS files
    # after dropping to its own user.
    folder = Path(tempfile.mkdtemp(prefix="blinkpay-pki-"))
    try:
        yield _make_pki(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _make_pki(folder: Path) -> Pki:
    os.chmod(folder, 0o755)
    ca_key, server_key, client_key, host_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(4)
    )
    ca = _cert("blinkpay test CA", ca_key, "blinkpay test CA", ca_key, ca=True)
    server = _cert("127.0.0.1", server_key, "blinkpay test CA", ca_key, server=True)
    client = _cert("gate-01", client_key, "blinkpay test CA", ca_key)
    host = _cert("host-a", host_key, "blinkpay test CA", ca_key)
    names = ("ca.pem", "srv.pem", "srv.key", "cli.pem", "cli.key", "host.pem", "host.key")
    paths = Pki(*(folder / n for n in names))
    for path, cert in (
        (paths.ca, ca),
        (paths.server_cert, server),
        (paths.client_cert, client),
        (paths.host_cert, host),
    ):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for path, key in (
        (paths.server_key, server_key),
        (paths.client_key, client_key),
        (paths.host_key, host_key),
    ):
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(path, 0o644)
    return paths


# -- host and terminals -----------------------------------------------------------------


def fast_mqtt(url: str, **extra: Any) -> dict[str, Any]:
    """MQTT settings for quick tests: short keepalive, quick reconnects and retries."""
    return {
        "url": url,
        "keepalive_s": 5,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.5,
        "auth_timeout_s": 3.0,
        "tx_retry_s": 1.0,
        "telemetry_interval_s": 1.0,
        "snapshot_timeout_s": 10.0,
        "shard_id": SHARD,
        **extra,
    }


def make_host(
    url: str,
    keys: BackendKeys,
    folder: Path,
    host_id: str = "host-a",
    limits: dict[str, Any] | None = None,
    **mqtt: Any,
) -> PaymentHost:
    """limits: HostConfig's per-terminal limits for a test that pays faster than a person."""
    config = HostConfig(
        **(limits or {}),
        host_id=host_id,
        mqtt=fast_mqtt(url, **mqtt),
        db_path=folder / "host.db",
        signing_key_file=keys.signing_key_file,
        pin_key_file=keys.pin_key_file,
        embedder_version=EMBEDDER,
        dim=DIM,
        snapshot_chunk_bytes=512,  # several chunks even for a small shard
    )
    return PaymentHost(config)


@dataclass
class Terminal:
    config: Config
    store: Store
    net: NetService
    signing_key: Ed25519PrivateKey
    box_key: X25519PrivateKey

    @property
    def device_id(self) -> str:
        return self.config.device.id

    def public_key_pem(self) -> bytes:
        return public_pem(self.signing_key.public_key())

    def box_public_pem(self) -> bytes:
        return box_public_pem(self.box_key)

    def register(self, host: PaymentHost) -> None:
        """What `blinkpay-host device` does: its signing key and its X25519 key."""
        host.register_device(self.device_id, self.public_key_pem(), self.box_public_pem(), SHARD)

    def pay(
        self, token: str | None, amount: int, status: str = "approved", tx_id: str | None = None
    ) -> str:
        """Write a decided, signed transaction to the ledger, as the session does."""
        document = pending_document(token, amount, tx_id)
        tx_id = document["id"]
        self.store.ledger.write_pending(document)
        final = {**document, "status": status, "reasons": ["test"]}
        final["signature"] = sign_document(final, self.signing_key)
        assert self.store.ledger.set_status(tx_id, status, ["test"], token=token, body=final)
        self.net.tx_written()
        return tx_id

    def stop(self) -> None:
        self.net.stop()
        self.store.close()


def pending_document(token: str | None, amount: int, tx_id: str | None = None) -> dict[str, Any]:
    """A turnstile payment as the session writes it before the decision (a new id unless
    given, created now)."""
    return {
        "id": tx_id or str(uuid6.uuid7()),
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "amount": amount,
        "currency": "EUR",
        "token": token,
        "mode": "turnstile",
        "reasons": [],
    }


def make_terminal(
    url: str,
    keys: BackendKeys,
    folder: Path,
    device_id: str = "gate-01",
    hold_remote: bool = False,
    **mqtt: Any,
) -> Terminal:
    """hold_remote: remote requests wait for `net.remote.release()` (as `blinkpay run`'s)."""
    config = config_from_mapping(
        {
            "device": {"id": device_id, "data_dir": str(folder)},
            "mqtt": fast_mqtt(url, backend_public_key_file=str(keys.public_key_file), **mqtt),
        }
    )
    paths = store_key_paths(config.store, config.device.data_dir)
    box_path = Path(config.device.data_dir) / config.store.box_key_file
    if not paths.data_key.exists():
        provision_keys(paths)
        generate_box_key(box_path)
    box_key = load_box_key(box_path)
    store = open_store(
        config.store, config.device.data_dir, embedder_version=EMBEDDER, dim=DIM, shard_id=SHARD
    )
    net = NetService(
        config.mqtt,
        config.device.id,
        ledger=store.ledger,
        shard_store=TemplateShardPort(store.shard),
        state_dir=config.device.data_dir,
        signing_key=load_signing_key(paths.signing_key),
        template_key=box_key,
        hold_remote=hold_remote,
    )
    return Terminal(config, store, net, load_signing_key(paths.signing_key), box_key)


def unit_vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


# -- capture ------------------------------------------------------------------------------


@dataclass
class Recorder:
    """A plain paho client on the whole prefix: what dashboards would see."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: mqtt.Client | None = None

    def wait_for(self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            with self.lock:
                batch = self.messages[seen:]
                seen += len(batch)
            for topic, raw in batch:
                try:
                    payload = json.loads(raw)
                except ValueError:
                    continue
                if predicate(topic, payload):
                    return True
            time.sleep(0.02)
        return False

    def validate_all(self) -> int:
        """Every captured message of the contract validates against its schema."""
        count = 0
        with self.lock:
            captured = list(self.messages)
        for topic, raw in captured:
            name = message_for_topic(PREFIX, topic)
            assert name is not None, f"uncontracted topic {topic}"
            schemas.parse(name, raw, max_bytes=10 * 1024 * 1024)
            count += 1
        return count


def start_recorder(broker: Broker, tls: Pki | None = None, skip: tuple[str, ...] = ()) -> Recorder:
    recorder = Recorder()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="recorder", protocol=mqtt.MQTTv5)
    if tls is not None:
        client.tls_set(str(tls.ca), str(tls.host_cert), str(tls.host_key))
    connected = threading.Event()

    def on_connect(c: mqtt.Client, *_: Any) -> None:
        c.subscribe(f"{PREFIX}/#", qos=1)
        connected.set()

    def on_message(c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if any(s in message.topic for s in skip):
            return
        with recorder.lock:
            recorder.messages.append((message.topic, bytes(message.payload)))

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(broker.host, broker.port, keepalive=5)
    client.loop_start()
    assert connected.wait(5)
    recorder.client = client
    return recorder


def stop_recorder(recorder: Recorder) -> None:
    if recorder.client is not None:
        recorder.client.loop_stop()
        recorder.client.disconnect()


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(broker: Broker, **kwargs: Any) -> Recorder:
        recorder = start_recorder(broker, **kwargs)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        stop_recorder(recorder)
