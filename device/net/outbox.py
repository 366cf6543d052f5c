"""Ledger sync: every unacknowledged transaction is published at QoS 1, oldest first, until
the host acknowledges its id on tx/ack. The state is the store's ledger (not memory), so it
survives restarts and outages of any length; at most `tx_batch` are in flight at a time,
and nothing leaves the ledger except through an acknowledgement."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device.core.ports import LedgerPort
from device.crypto.signing import verify_document
from device.net.client import Inbound, MqttLink
from device.net.schemas import PayloadRejected
from device.net.topics import DeviceTopics

log = logging.getLogger(__name__)


def signed_document(row: Any) -> dict[str, Any]:
    """The signed transaction document of a ledger row (a dict, or an object with .body)."""
    body = row.get("body", row) if isinstance(row, Mapping) else getattr(row, "body", row)
    # LedgerRow (device/store/ledger.py) has .body; a plain dict row may be the document.
    if isinstance(body, str | bytes):
        body = json.loads(body)
    if not isinstance(body, Mapping):
        raise TypeError(f"ledger row has no document: {type(row).__name__}")
    return dict(body)


def row_digest(signature: str) -> str:
    """sha256 (hex) of a row's decoded signature: what the host's ack names (row_digest)."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raw = signature.encode()
    return hashlib.sha256(raw).hexdigest()


def tx_message(device_id: str, row: Any) -> tuple[str, dict[str, Any]]:
    """(tx_id, Transaction payload) for a ledger row; the record goes out exactly as signed."""
    document = signed_document(row)
    signature = str(document.pop("signature", ""))
    tx_id = str(document.get("id") or document.get("tx_id"))
    status = row.get("status") if isinstance(row, Mapping) else getattr(row, "status", None)
    payload = {
        "v": 1,
        "device_id": device_id,
        "status": status or document.get("status"),
        "tx": document,
        "signature": signature,
    }
    return tx_id, payload


class LedgerSync:
    def __init__(
        self,
        link: MqttLink,
        topics: DeviceTopics,
        ledger: LedgerPort,
        *,
        batch: int,
        retry_s: float,
        backend_key: Ed25519PublicKey,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._link = link
        self._backend_key = backend_key
        self._topics = topics
        self._ledger = ledger
        self._batch = batch
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sent_at: dict[str, float] = {}
        # tx id -> digest of the signature of the row as sent: an ack must name it
        self._digests: dict[str, str] = {}
        self.foreign_acks = 0
        self._acked: list[tuple[str, str | None]] = []  # (tx id, status the host holds)
        self.published = 0
        self.acked = 0
        self.duplicate_acks = 0
        self.rejected_by_host = 0
        link.subscribe(topics.tx_ack, "TxAck", self._on_ack)
        link.on_connect(self._on_connect)

    def depth(self) -> int:
        return int(self._ledger.depth())

    def _on_connect(self, session_present: bool) -> None:
        # After an outage, resend everything unacknowledged at once; the host de-duplicates.
        with self._lock:
            self._sent_at.clear()

    def _on_ack(self, message: Inbound) -> None:
        payload = message.payload
        # A forged ack would stop the resending of a row the host never got.
        if not verify_document(payload, self._backend_key):
            raise PayloadRejected("bad_signature", "transaction ack not signed by the host")
        with self._lock:
            if self._digests.get(payload["tx_id"]) != payload["row_digest"]:
                # an ack for a row this terminal never sent (someone else's, same id)
                self.foreign_acks += 1
                raise PayloadRejected("foreign_ack", f"ack for tx {payload['tx_id']}")
            if payload["result"] == "rejected":
                # The host keeps it (as rejected); an operator must look, so say so loudly.
                log.error("host rejected tx %s: %s", payload["tx_id"], payload.get("reason", ""))
                self.rejected_by_host += 1
            self._acked.append((payload["tx_id"], payload.get("status")))

    def tick(self) -> None:
        """Record acknowledgements, then (re)publish what is due; runs on the worker thread."""
        with self._lock:
            acked, self._acked = self._acked, []
        for tx_id, status in acked:
            if self._ledger.mark_acked(tx_id, status):
                self.acked += 1
            else:
                self.duplicate_acks += 1  # a resend's second ack, or an id we never had
            with self._lock:
                self._sent_at.pop(tx_id, None)
                self._digests.pop(tx_id, None)
        if not self._link.connected:
            return
        acked_ids = {tx_id for tx_id, _ in acked}
        now = self._clock()
        for row in self._ledger.pending_sync(self._batch):
            try:
                tx_id, payload = tx_message(self._topics.device_id, row)
            except (TypeError, ValueError) as exc:
                log.error("ledger row cannot be sent (kept in the ledger): %s", exc)
                continue
            with self._lock:
                self._digests[tx_id] = row_digest(payload["signature"])
                sent = self._sent_at.get(tx_id)
                if tx_id in acked_ids or (sent is not None and now - sent < self._retry_s):
                    continue
            if not self._link.publish(self._topics.tx, payload, qos=1):
                return
            with self._lock:
                self._sent_at[tx_id] = now
            self.published += 1
