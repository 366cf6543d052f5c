"""Online authorization: a request on auth/req, the answer on auth/resp, or a timeout.

The request is signed with the terminal's key (the host answers only what it can verify
against the key registered for this device id), and the host answers on this terminal's
auth/resp, never on a response topic a requester names. MQTT 5: the request id also
travels as correlation data; MQTT 3.1.1: the request id in the payload correlates.
Late answers (after the timeout) and duplicates find no waiting request and are ignored.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device.core.events import AuthCandidate
from device.crypto.signing import verify_document
from device.net.client import Inbound, MqttLink
from device.net.schemas import PayloadRejected
from device.net.topics import DeviceTopics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthReply:
    request_id: str
    tx_id: str
    approved: bool
    reason: str
    token: str | None
    host_id: str | None


@dataclass
class _Pending:
    tx_id: str
    done: threading.Event
    reply: AuthReply | None = None


class Authorizer:
    """Thread-safe: any thread may call `authorize`; it blocks for at most the timeout."""

    def __init__(
        self,
        link: MqttLink,
        topics: DeviceTopics,
        timeout_s: float,
        backend_key: Ed25519PublicKey,
    ) -> None:
        self._link = link
        self._backend_key = backend_key
        self._topics = topics
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self.late_or_duplicate = 0
        self.timeouts = 0
        link.subscribe(topics.auth_resp, "AuthResponse", self._on_response)

    def authorize(
        self,
        *,
        tx_id: str,
        amount: int,
        currency: str,
        candidates: Sequence[AuthCandidate],
        timeout_s: float | None = None,
    ) -> AuthReply | None:
        """The host's answer, or None (offline or no answer in time: use the offline rules)."""
        if not self._link.connected:
            return None
        request_id = uuid.uuid4().hex
        waiting = _Pending(tx_id, threading.Event())
        with self._lock:
            self._pending[request_id] = waiting
        payload: dict[str, Any] = {
            "v": 1,
            "request_id": request_id,
            "device_id": self._topics.device_id,
            "tx_id": tx_id,
            "amount": int(amount),
            "currency": currency,
            "ts": time.time(),
            "candidates": [_candidate(c) for c in candidates],
        }
        try:
            sent = self._link.publish_signed(
                self._topics.auth_req,
                payload,
                qos=1,
                correlation_data=request_id.encode(),
                # Nobody waits for the answer after the timeout: the broker drops a request
                # still queued then (a busy or restarting host does no stale work).
                expiry_s=math.ceil(self._timeout_s if timeout_s is None else timeout_s),
            )
            if sent:
                waiting.done.wait(self._timeout_s if timeout_s is None else timeout_s)
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
        if waiting.reply is None and sent:
            self.timeouts += 1
        return waiting.reply

    def _on_response(self, message: Inbound) -> None:
        payload = message.payload
        # Only the host's signed word can approve a payment: anyone on the broker can publish.
        if not verify_document(payload, self._backend_key):
            raise PayloadRejected("bad_signature", "authorization response not signed by the host")
        request_id = payload["request_id"]
        if message.correlation_data is not None:
            correlated = message.correlation_data.decode("utf-8", "replace")
            if correlated != request_id:  # a signed answer moved onto another request
                raise PayloadRejected("wrong_request", "correlation data and request id differ")
        with self._lock:
            waiting = self._pending.get(request_id)
            if waiting is None or waiting.reply is not None or waiting.tx_id != payload["tx_id"]:
                self.late_or_duplicate += 1
                log.info("ignored late or duplicate authorization response %s", request_id)
                return
            waiting.reply = AuthReply(
                request_id=request_id,
                tx_id=payload["tx_id"],
                approved=payload["decision"] == "approved",
                reason=payload["reason"],
                token=payload.get("token"),
                host_id=payload.get("host_id"),
            )
        waiting.done.set()


def _candidate(candidate: AuthCandidate) -> dict[str, Any]:
    item: dict[str, Any] = {"token": candidate.token}
    if candidate.pin_block is not None:
        item["pin_block"] = candidate.pin_block.hex()
    return item
