"""Changing a shard's embedder without stored photos (docs/matching.md, "Changing the
embedder"): the migration's state per shard, the new-version templates terminals send
for faces they just matched and were paid by, coverage, and the operator's switch.

A shard has one active embedder: its `templates` rows, the only ones its snapshots and
deltas carry. While it migrates to another embedder, `next_templates` collects that
embedder's templates: from a paid live face (a terminal's `retemplate` message, checked
here) or from an enrolment made with the new embedder. The switch makes them the shard's
templates in one transaction and deletes the old version's; customers without a template
of the new version then have none on any terminal and re-enrol (docs/console.md).

The rule between the two sources: a template from an enrolment is never replaced by one
from a payment; a payment template replaces an older payment template (the latest paid
face of that customer, so one poor capture is not kept for good).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backend.db import HostDb
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


@dataclass(frozen=True)
class ShardEmbedder:
    """A shard's active embedder and the one it is migrating to (None: no migration)."""

    shard_id: str
    version: str
    dim: int
    migrating_to: str | None = None
    migrating_dim: int | None = None


def shard_embedder(
    conn: sqlite3.Connection, shard_id: str, default_version: str, default_dim: int
) -> ShardEmbedder:
    row = conn.execute(
        "SELECT embedder_version, dim, migrating_to, migrating_dim FROM shards WHERE shard_id = ?",
        (shard_id,),
    ).fetchone()
    if row is None:
        return ShardEmbedder(shard_id, default_version, default_dim)
    return ShardEmbedder(shard_id, row[0], int(row[1]), row[2], row[3])


def unit_vector(vector: Any, dim: int) -> np.ndarray:
    vec = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vec))
    if vec.shape[0] != dim or not math.isfinite(norm) or norm == 0:
        raise BlinkpayError(f"template must be a finite non-zero {dim}-D vector")
    return (vec / norm).astype(np.float32)


def store_next_template(
    conn: sqlite3.Connection,
    token: str,
    embedder_version: str,
    vector: np.ndarray,
    *,
    source: str,
    tx_id: str | None = None,
    device_id: str | None = None,
) -> bool:
    """Keep `vector` as the customer's template of the next embedder; False when the rule
    keeps the one there (an enrolment template is never replaced by a payment's)."""
    held = conn.execute(
        "SELECT source FROM next_templates WHERE token = ? AND embedder_version = ?",
        (token, embedder_version),
    ).fetchone()
    if held is not None and held[0] == "enrolment" and source == "payment":
        return False
    conn.execute(
        "INSERT OR REPLACE INTO next_templates VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token,
            embedder_version,
            int(vector.shape[0]),
            vector.astype("<f4").tobytes(),
            source,
            tx_id,
            device_id,
            time.time(),
        ),
    )
    return True


class Migrations:
    """The operator's side (start, coverage, switch) and the host's check of each
    terminal's retemplate message."""

    def __init__(
        self,
        db: HostDb,
        box_key: X25519PrivateKey,
        *,
        default_version: str,
        default_dim: int,
    ) -> None:
        self._db = db
        self._box_key = box_key
        self.default_version, self.default_dim = default_version, default_dim
        self.refusals: Counter[str] = Counter()
        self.accepted = 0

    def embedder(self, shard_id: str) -> ShardEmbedder:
        with self._db.lock:
            return shard_embedder(self._db.db.conn, shard_id, *self._defaults)

    @property
    def _defaults(self) -> tuple[str, int]:
        return self.default_version, self.default_dim

    # -- operator ---------------------------------------------------------------------------

    def start(self, shard_id: str, version: str, dim: int) -> ShardEmbedder:
        """Begin collecting `version` templates for the shard; bumps the shard's sequence
        (the caller publishes a snapshot, which tells the terminals)."""
        if not version or len(version) > 64 or not 0 < dim <= 4096:
            raise BlinkpayError("an embedder version of 1..64 characters and a dim of 1..4096")
        with self._db.transaction() as conn:
            current = shard_embedder(conn, shard_id, *self._defaults)
            if version == current.version:
                raise BlinkpayError(f"shard {shard_id} already uses {version}")
            if current.migrating_to not in (None, version):
                raise BlinkpayError(
                    f"shard {shard_id} is migrating to {current.migrating_to}; "
                    "cancel that first (`blinkpay-host shard cancel`)"
                )
            self._ensure_row(conn, current)
            conn.execute(
                "UPDATE shards SET migrating_to = ?, migrating_dim = ?, seq = seq + 1"
                " WHERE shard_id = ?",
                (version, dim, shard_id),
            )
        return self.embedder(shard_id)

    def cancel(self, shard_id: str) -> ShardEmbedder:
        """Stop the migration; the templates it collected are deleted."""
        with self._db.transaction() as conn:
            current = shard_embedder(conn, shard_id, *self._defaults)
            if current.migrating_to is None:
                raise BlinkpayError(f"shard {shard_id} is not migrating")
            self._drop_next(conn, shard_id, current.migrating_to)
            conn.execute(
                "UPDATE shards SET migrating_to = NULL, migrating_dim = NULL, seq = seq + 1"
                " WHERE shard_id = ?",
                (shard_id,),
            )
        return self.embedder(shard_id)

    def coverage(self, shard_id: str) -> dict[str, Any]:
        """How many of the shard's customers have a template of the next embedder."""
        with self._db.lock:
            conn = self._db.db.conn
            state = shard_embedder(conn, shard_id, *self._defaults)
            customers = conn.execute(
                "SELECT COUNT(*) FROM accounts WHERE shard_id = ?", (shard_id,)
            ).fetchone()[0]
            by_source: dict[str, int] = {}
            if state.migrating_to is not None:
                rows = conn.execute(
                    "SELECT n.source, COUNT(*) FROM next_templates n"
                    " JOIN accounts a ON a.token = n.token"
                    " WHERE a.shard_id = ? AND n.embedder_version = ? GROUP BY n.source",
                    (shard_id, state.migrating_to),
                ).fetchall()
                by_source = {source: int(count) for source, count in rows}
        covered = sum(by_source.values())
        return {
            "shard_id": shard_id,
            "embedder_version": state.version,
            "dim": state.dim,
            "migrating_to": state.migrating_to,
            "migrating_dim": state.migrating_dim,
            "customers": int(customers),
            "covered": covered,
            "from_payments": by_source.get("payment", 0),
            "from_enrolments": by_source.get("enrolment", 0),
            "coverage": covered / customers if customers else 0.0,
        }

    def switch(self, shard_id: str, min_coverage: float = 0.0) -> dict[str, Any]:
        """Make the next embedder the shard's: its templates replace the old version's in
        one transaction (the old ones are deleted); customers without one are left without
        a template (they re-enrol). Bumps the sequence; the caller publishes a snapshot."""
        cover = self.coverage(shard_id)
        if cover["migrating_to"] is None:
            raise BlinkpayError(f"shard {shard_id} is not migrating")
        if cover["coverage"] < min_coverage:
            raise BlinkpayError(
                f"coverage {cover['coverage']:.1%} is below the {min_coverage:.1%} asked for"
            )
        version, dim = cover["migrating_to"], cover["migrating_dim"]
        with self._db.transaction() as conn:
            now = shard_embedder(conn, shard_id, *self._defaults)
            if now.migrating_to != version:  # changed since the coverage was read
                raise BlinkpayError(f"shard {shard_id}: the migration changed; try again")
            conn.execute(
                "DELETE FROM templates WHERE token IN"
                " (SELECT token FROM accounts WHERE shard_id = ?)",
                (shard_id,),
            )
            conn.execute(
                "INSERT INTO templates (token, embedder_version, dim, vector)"
                " SELECT n.token, n.embedder_version, n.dim, n.vector FROM next_templates n"
                " JOIN accounts a ON a.token = n.token"
                " WHERE a.shard_id = ? AND n.embedder_version = ?",
                (shard_id, version),
            )
            self._drop_next(conn, shard_id, None)
            conn.execute(
                "UPDATE shards SET embedder_version = ?, dim = ?, migrating_to = NULL,"
                " migrating_dim = NULL, seq = seq + 1 WHERE shard_id = ?",
                (version, dim, shard_id),
            )
        log.info(
            "shard %s switched from %s to %s: %d of %d customers keep a template",
            shard_id,
            cover["embedder_version"],
            version,
            cover["covered"],
            cover["customers"],
        )
        return {**cover, "switched_to": version, "needs_enrolment": self.without_template(shard_id)}

    def without_template(self, shard_id: str) -> list[str]:
        """Tokens of the shard's customers with no template of its active embedder."""
        with self._db.lock:
            rows = self._db.db.conn.execute(
                "SELECT a.token FROM accounts a LEFT JOIN templates t ON t.token = a.token"
                " WHERE a.shard_id = ? AND t.token IS NULL ORDER BY a.token",
                (shard_id,),
            ).fetchall()
        return [row[0] for row in rows]

    @staticmethod
    def _ensure_row(conn: sqlite3.Connection, state: ShardEmbedder) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO shards (shard_id, seq, embedder_version, dim)"
            " VALUES (?, 1, ?, ?)",
            (state.shard_id, state.version, state.dim),
        )

    @staticmethod
    def _drop_next(conn: sqlite3.Connection, shard_id: str, version: str | None) -> None:
        sql = (
            "DELETE FROM next_templates WHERE token IN"
            " (SELECT token FROM accounts WHERE shard_id = ?)"
        )
        params: tuple[Any, ...] = (shard_id,)
        if version is not None:
            sql += " AND embedder_version = ?"
            params += (version,)
        conn.execute(sql, params)

    # -- a terminal's retemplate message ----------------------------------------------------

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
        with self._db.lock:
            conn = self._db.db.conn
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
        with self._db.lock:
            row = self._db.db.execute(
                "SELECT public_key_pem FROM devices WHERE device_id = ?", [device_id]
            ).fetchone()
        if row is None or row[0] is None:
            raise Refused("unknown_device", device_id)
        try:
            key = serialization.load_pem_public_key(row[0].encode())
        except ValueError:
            raise Refused("unknown_device", f"{device_id}: unreadable key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise Refused("unknown_device", f"{device_id}: not an Ed25519 key")
        return key

    @staticmethod
    def _check_transaction(
        conn: sqlite3.Connection, device_id: str, tx_id: str, token: str, shard_id: str
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
