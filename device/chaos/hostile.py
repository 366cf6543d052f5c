"""The chaos bench's hostile network (docs/security.md): while customers pay, an attacker on
the open broker copies every transaction it sees into forged rows (unsigned, on other
device ids, status flipped), a second registered terminal ("chaos-rogue", whose key the
host knows) signs offline approvals over the floor limit and voids of the real terminal's
sales, unregistered ids ask for authorizations with response topics of their choosing,
and the rogue floods PIN blocks. None of it may move money: the books must still end exact.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device.crypto.signing import sign_document

PREFIX = "blinkpay/v1"
ROGUE_ID = "chaos-rogue"
OVER_FLOOR = 45_000  # far past any offline floor limit


@dataclass
class Hostile:
    """What the attacker sent, by kind."""

    sent: dict[str, int] = field(default_factory=dict)
    answers_to_chosen_topics: int = 0

    def count(self, kind: str) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + 1


class HostileNetwork:
    def __init__(
        self, port: int, device_id: str, token: str, rogue_key: Ed25519PrivateKey, seed: int
    ) -> None:
        self.device_id = device_id
        self.token = token
        self.rogue_key = rogue_key
        self.rng = random.Random(seed)
        self.stranger = Ed25519PrivateKey.generate()  # a key nobody registered
        self.result = Hostile()
        self._seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"chaos-attacker-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not connected.wait(10):
            raise RuntimeError("the attacker could not reach the broker")
        self.client.subscribe(f"{PREFIX}/dev/{device_id}/tx", qos=1)
        self.client.subscribe("chaos/stolen/#", qos=1)

    def _on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.startswith("chaos/stolen"):
            self.result.answers_to_chosen_topics += 1
            return
        try:
            payload = json.loads(message.payload)
        except ValueError:
            return
        with self._lock:
            self._seen.append(payload)

    def _publish(self, kind: str, topic: str, payload: dict[str, Any], reply_to: str = "") -> None:
        props = Properties(PacketTypes.PUBLISH)
        if reply_to:
            props.ResponseTopic = reply_to
            props.CorrelationData = b"stolen"
        self.client.publish(topic, json.dumps(payload), qos=1, properties=props)
        self.result.count(kind)

    def _rogue_row(self, tx: dict[str, Any]) -> dict[str, Any]:
        signature = sign_document(tx, self.rogue_key)
        return {
            "v": 1,
            "device_id": ROGUE_ID,
            "status": tx["status"],
            "tx": tx,
            "signature": signature,
        }

    def round(self) -> None:
        """One round of every attack, on what the terminal sent so far."""
        with self._lock:
            seen, self._seen = self._seen, []
        for message in seen:
            tx = dict(message.get("tx", {}))
            if "id" not in tx:
                continue
            flipped = {**tx, "status": "declined"}
            for device_id in (self.device_id, "chaos-ghost", ROGUE_ID):
                forged = {"v": 1, "device_id": device_id, "status": "declined", "tx": flipped}
                self._publish(
                    "forged_row", f"{PREFIX}/dev/{device_id}/tx", {**forged, "signature": "AAAA"}
                )
            voided = {**tx, "status": "voided"}
            self._publish("rogue_void", f"{PREFIX}/dev/{ROGUE_ID}/tx", self._rogue_row(voided))
            copied = {**tx, "status": "approved", "amount": tx.get("amount", 0)}
            self._publish("rogue_copy", f"{PREFIX}/dev/{ROGUE_ID}/tx", self._rogue_row(copied))
        offline = {
            "id": str(uuid.uuid4()),
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "amount": OVER_FLOOR,
            "currency": "EUR",
            "token": self.token,
            "status": "approved",
            "authorization": "offline",
        }
        self._publish("rogue_offline", f"{PREFIX}/dev/{ROGUE_ID}/tx", self._rogue_row(offline))
        for device_id in ("chaos-ghost", self.device_id):
            request = self._auth_request(device_id, [{"token": self.token}])
            request["signature"] = sign_document(request, self.stranger)
            self._publish(
                "foreign_auth",
                f"{PREFIX}/dev/{device_id}/auth/req",
                request,
                reply_to=f"chaos/stolen/{device_id}",
            )
        blocks = [{"token": self.token, "pin_block": self.rng.randbytes(16).hex()}] * 8
        for _ in range(5):
            flood = self._auth_request(ROGUE_ID, blocks)
            flood["signature"] = sign_document(flood, self.rogue_key)
            self._publish("pin_flood", f"{PREFIX}/dev/{ROGUE_ID}/auth/req", flood)

    def _auth_request(self, device_id: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "v": 1,
            "request_id": uuid.uuid4().hex,
            "device_id": device_id,
            "tx_id": str(uuid.uuid4()),
            "amount": 250,
            "currency": "EUR",
            "ts": time.time(),
            "candidates": candidates,
        }

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
