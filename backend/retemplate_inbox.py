"""A terminal's `retemplate` message on the host (docs/matching.md, "Changing the
embedder"): kept as the customer's template of the embedder the shard migrates to only
when the payload's device id is the topic's, the signature is by the key registered for
that device, the shard migrates to exactly that embedder, and the transaction exists, was
made by that device, was approved and names that customer of that shard. Everything else
is refused with a counted reason and never answered. Also the host's X25519 key the
templates are sealed to."""

from __future__ import annotations

import base64
import contextlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backend.db import HostDb
from backend.retemplating import shard_embedder, store_next_template, unit_vector
from backend.store import Conn
from device.crypto.signing import KeyFileError, verify_document
from device.crypto.template_box import (
    SealError,
    generate_box_key,
    load_box_key,
    open_from_device,
    retemplate_context,
)
from device.errors import BlinkpayError

log = logging.getLogger(__name__)

# Why a retemplate message was refused (counted by reason, logged; never answered).
REFUSALS = (
    "wrong_device",
    "unknown_device",
    "bad_signature",
    "not_migrating",
    "wrong_embedder",
    "unknown_tx",
    "other_device_tx",
    "not_approved",
    "other_customer",
    "bad_seal",
    "bad_vector",
    "kept_enrolment",
)


class Refused(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class RetemplateInbox:
    def __init__(
        self, db: HostDb, box_key: X25519PrivateKey, *, default_version: str, default_dim: int
    ) -> None:
        self._db = db
        self._box_key = box_key
        self._defaults = (default_version, default_dim)
        self.refusals: Counter[str] = Counter()
        self.accepted = 0

    def receive(self, topic_device: str, payload: dict[str, Any]) -> str:
        """Check and keep one retemplate message; returns "stored" or raises Refused (the
        reason is counted). The payload passed the Retemplate schema already."""
        try:
            self._receive(topic_device, payload)
        except Refused as exc:
            self.refusals[exc.reason] += 1
            log.warning(
                "retemplate from %s refused: %s",
                topic_device,
                exc,
                extra={"event": "retemplate_refused", "reason": exc.reason},
            )
            raise
        self.accepted += 1
        return "stored"

    def _receive(self, topic_device: str, payload: dict[str, Any]) -> None:
        device_id = payload["device_id"]
        if device_id != topic_device:
            raise Refused("wrong_device", f"payload names {device_id}")
        key = self._device_key(device_id)
        if not verify_document(payload, key):
            raise Refused("bad_signature")
        tx_id, token, shard_id = payload["tx_id"], payload["token"], payload["shard_id"]
        with self._db.transaction() as conn:
            state = shard_embedder(conn, shard_id, *self._defaults)
            if state.migrating_to is None:
                raise Refused("not_migrating", f"shard {shard_id}")
            if (payload["embedder_version"], payload["dim"]) != (
                state.migrating_to,
                state.migrating_dim,
            ):
                raise Refused("wrong_embedder", f"{payload['embedder_version']}")
            self._check_transaction(conn, device_id, tx_id, token, shard_id)
        try:
            raw = open_from_device(
                self._box_key,
                payload["key_wrap"],
                payload["sealed_b64"],
                retemplate_context(shard_id, device_id, tx_id),
                token,
            )
        except SealError as exc:
            raise Refused("bad_seal", str(exc)) from None
        if len(raw) != 4 * state.migrating_dim:
            raise Refused("bad_vector", f"{len(raw)} bytes")
        try:
            vector = unit_vector(np.frombuffer(raw, dtype="<f4"), state.migrating_dim)
        except BlinkpayError as exc:
            raise Refused("bad_vector", str(exc)) from None
        with self._db.transaction() as conn:
            again = shard_embedder(conn, shard_id, *self._defaults)
            if again.migrating_to != state.migrating_to:
                raise Refused("not_migrating", f"shard {shard_id} switched meanwhile")
            kept = store_next_template(
                conn,
                token,
                state.migrating_to,
                vector,
                source="payment",
                tx_id=tx_id,
                device_id=device_id,
            )
        if not kept:
            raise Refused("kept_enrolment", "the customer's enrolment template stays")
        log.info(
            "retemplate stored",
            extra={"event": "retemplate", "device_id": device_id, "tx_id": tx_id},
        )

    def _device_key(self, device_id: str) -> Ed25519PublicKey:
        rows = self._db.query("SELECT public_key_pem FROM devices WHERE device_id = ?", [device_id])
        if not rows or rows[0]["public_key_pem"] is None:
            raise Refused("unknown_device", device_id)
        try:
            key = serialization.load_pem_public_key(rows[0]["public_key_pem"].encode())
        except ValueError:
            raise Refused("unknown_device", f"{device_id}: unreadable key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise Refused("unknown_device", f"{device_id}: not an Ed25519 key")
        return key

    @staticmethod
    def _check_transaction(
        conn: Conn, device_id: str, tx_id: str, token: str, shard_id: str
    ) -> None:
        """The transaction exists, was made by this device, was approved and names this
        customer, who belongs to the shard: the synced row decides; before it arrives, the
        host's own approval of the online authorization does."""
        row = conn.execute(
            "SELECT device_id, token, status, result FROM transactions WHERE tx_id = ?",
            (tx_id,),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT device_id, token, decision, 'recorded' FROM authorizations WHERE tx_id = ?",
                (tx_id,),
            ).fetchone()
        if row is None:
            raise Refused("unknown_tx", tx_id)
        tx_device, tx_token, status, result = row
        if tx_device != device_id:
            raise Refused("other_device_tx", tx_id)
        if status != "approved" or result != "recorded":
            raise Refused("not_approved", f"{tx_id} is {status}")
        if tx_token != token:
            raise Refused("other_customer", tx_id)
        home = conn.execute("SELECT shard_id FROM accounts WHERE token = ?", (token,)).fetchone()
        if home is None or home[0] != shard_id:
            raise Refused("other_customer", f"{token} is not in shard {shard_id}")


def load_or_make_box_key(path: Path) -> X25519PrivateKey:
    """The host's X25519 key (`blinkpay-host keys` writes it; a host made before that
    makes it here, 0600)."""
    try:
        if not Path(path).exists():
            log.info("making the host's X25519 key %s", path)
            with contextlib.suppress(KeyFileError, FileExistsError):  # made meanwhile
                generate_box_key(Path(path))
        return load_box_key(Path(path))  # the file's key, whoever wrote it last
    except (OSError, ValueError, KeyFileError) as exc:
        raise BlinkpayError(f"host box key {path}: {exc}") from None


def host_key_b64(box_key: X25519PrivateKey) -> str:
    """The host's X25519 public key as the shard messages' `migration.host_key` carries it."""
    raw = box_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode("ascii")
