"""An authorization request carries the terminal's wait as its MQTT 5 message expiry; a
worker that could not start on it before that (overloaded: it queued behind others) drops
it undecided, so an overloaded host spends its time on requests still waited for, and a
request nobody waits for leaves no hold behind (docs/scaling.md, "Many workers")."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device.crypto.signing import sign_document
from device.net.client import Inbound
from device.net.schemas import dumps
from tests.net.conftest import SHARD, BackendKeys, make_host, unit_vector

STALE, FRESH = str(uuid.uuid4()), str(uuid.uuid4())


def _request(key: Ed25519PrivateKey, tx_id: str) -> dict:
    request = {"v": 1, "request_id": uuid.uuid4().hex, "device_id": "gate-01", "tx_id": tx_id,
               "amount": 250, "currency": "EUR", "ts": time.time(),
               "candidates": [{"token": "tok-1"}]}  # fmt: skip
    request["signature"] = sign_document(request, key)
    return request


def test_a_request_nobody_waits_for_any_more_is_dropped_undecided(
    backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host("mqtt://127.0.0.1:1", backend_keys, tmp_path)  # never started
    try:
        key = Ed25519PrivateKey.generate()
        host.register_device("gate-01", key.public_key(), shard_id=SHARD)
        host.enrol("tok-1", unit_vector(1), shard_id=SHARD, balance=1000, publish=False)
        topic = "blinkpay/v1/dev/gate-01/auth/req"
        stale = Inbound(topic, _request(key, STALE), expires_in_s=3)
        host.inbound._authorize("gate-01", stale, deadline=time.monotonic() - 0.01)
        assert host.rejects["auth_expired"] == 1
        assert host.db.query("SELECT tx_id FROM authorizations") == []
        assert host.accounts.balance("tok-1") == 1000  # no hold for a request nobody waits for

        fresh = Inbound(topic, _request(key, FRESH), expires_in_s=3)
        host.inbound._authorize("gate-01", fresh, deadline=time.monotonic() + 3.0)
        rows = host.db.query("SELECT tx_id, decision FROM authorizations")
        assert rows == [{"tx_id": FRESH, "decision": "approved"}]
        assert host.accounts.balance("tok-1") == 750
    finally:
        host.db.close()


def test_the_link_hands_the_expiry_left_to_the_handler(
    backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host("mqtt://127.0.0.1:1", backend_keys, tmp_path)
    seen: list[Inbound] = []
    try:
        link = host.link
        link.subscribe("test/+/auth/req", "AuthRequest", seen.append)
        route = link.dispatcher.routes[-1]
        message = mqtt.MQTTMessage(topic=b"test/gate-01/auth/req")
        message.payload = dumps(_request(Ed25519PrivateKey.generate(), str(uuid.uuid4())))
        message.properties = Properties(PacketTypes.PUBLISH)
        message.properties.MessageExpiryInterval = 2
        link.dispatcher.handle(route, message)
        message.properties = Properties(PacketTypes.PUBLISH)  # a row: no expiry
        link.dispatcher.handle(route, message)
    finally:
        host.db.close()
    assert [m.expires_in_s for m in seen] == [2, None]
