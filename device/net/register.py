"""First boot: register this terminal's own Ed25519 public key with the host, once, with
the one-time enrolment token the operator put on the boot partition.

The request is signed with the key it registers (the host sees that the terminal holds
it); the answer must carry the host's signature, since anyone on the broker can publish.
A short-lived client of its own (not the device id: the service's session is untouched).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from device.crypto.signing import public_key_pem, sign_document, verify_document
from device.errors import BlinkpayError
from device.net.client import Inbound, MqttLink
from device.net.config import MqttConfig
from device.net.schemas import PayloadRejected
from device.net.topics import DeviceTopics

# What the engineer reads for each refusal (RegisterResponse.reason in docs/asyncapi.yaml).
REFUSALS = {
    "unknown_token": "the host does not know this enrolment token (another host, or mistyped)",
    "token_used": "this enrolment token was already used; it works once",
    "token_expired": "this enrolment token has expired",
    "wrong_device": "this enrolment token was issued for another device id",
    "bad_signature": "the host could not verify the request's signature",
    "bad_key": "the host refused the public key",
}
FIX = "make new boot files at the host: blinkpay-host device add {device_id} --boot-dir DIR"


@dataclass(frozen=True)
class Registration:
    registered: bool
    reason: str
    host_id: str | None

    def line(self, device_id: str) -> str:
        if self.registered:
            return f"registered {device_id} with host {self.host_id}"
        why = REFUSALS.get(self.reason, self.reason)
        return f"registration refused: {why}; {FIX.format(device_id=device_id)}"


def register_request(
    device_id: str, key: Ed25519PrivateKey, box_public_pem: str, token: str, request_id: str
) -> dict[str, Any]:
    """Signed with `key` (proof of possession); `box_public_pem` is the X25519 key the
    shard's templates are sealed to."""
    request: dict[str, Any] = {
        "v": 1,
        "request_id": request_id,
        "device_id": device_id,
        "public_key": public_key_pem(key),
        "box_public_key": box_public_pem,
        "token": token,
        "ts": time.time(),
    }
    request["signature"] = sign_document(request, key)
    return request


class _Answer:
    def __init__(self, request_id: str, host_key: Ed25519PublicKey) -> None:
        self.request_id = request_id
        self.host_key = host_key
        self.done = threading.Event()
        self.payload: dict[str, Any] | None = None

    def on_message(self, message: Inbound) -> None:
        if not verify_document(message.payload, self.host_key):
            raise PayloadRejected("bad_signature", "registration answer not signed by the host")
        if message.payload["request_id"] == self.request_id:
            self.payload = message.payload
            self.done.set()


def register(
    mqtt: MqttConfig,
    device_id: str,
    key: Ed25519PrivateKey,
    box_public_pem: str,
    token: str,
    host_key: Ed25519PublicKey,
    timeout_s: float = 30.0,
) -> Registration | None:
    """The host's signed answer, or None when the host did not answer in time; a broker
    that cannot be reached is a BlinkpayError."""
    topics = DeviceTopics(mqtt.prefix, device_id)
    request_id = uuid.uuid4().hex
    answer = _Answer(request_id, host_key)
    once = mqtt.model_copy(update={"session_expiry_s": 0})
    link = MqttLink(once, f"{device_id}-register-{request_id[:8]}")
    link.subscribe(topics.register_resp, "RegisterResponse", answer.on_message)
    link.start()
    deadline = time.monotonic() + timeout_s
    try:
        if not link.wait_connected(timeout_s):
            raise BlinkpayError(
                f"cannot reach the broker at {mqtt.url} in {timeout_s:.0f} s: check the "
                "network, the broker's address (terminal.env) and its CA"
            )
        request = register_request(device_id, key, box_public_pem, token, request_id)
        link.publish(
            topics.register_req,
            request,
            qos=1,
            correlation_data=request_id.encode(),
        )
        if not answer.done.wait(max(0.0, deadline - time.monotonic())):
            return None
    finally:
        link.stop()
    payload = answer.payload or {}
    registered = payload["result"] == "registered"
    return Registration(registered, payload["reason"], payload.get("host_id"))
