"""Template shards on the host: enrolment and account changes become signed, sequenced
deltas; a snapshot is the whole shard, serialised, hashed, chunked and signed.

On the wire every template is sealed (device/crypto/template_box.py): a fresh content key
per message, wrapped to the X25519 key of each terminal registered for the shard. The
plain forms (`snapshot()`, the deltas `enrol` returns) stay on the host."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any, overload

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from backend.accounts import Accounts, vector_b64
from backend.db import HostDb
from backend.retemplating import ShardEmbedder, shard_embedder, store_next_template, unit_vector
from backend.store import Conn
from device.crypto.template_box import (
    load_box_public_key,
    new_content_key,
    seal_template,
    wrap_content_key,
)
from device.errors import BlinkpayError, TranslatableError
from device.net.envelope import seal

STATUS_OPS = {"suspend": "suspended", "revoke": "revoked", "reactivate": "active"}


class ShardPublisher:
    def __init__(
        self,
        db: HostDb,
        accounts: Accounts,
        signing_key: Ed25519PrivateKey,
        *,
        embedder_version: str,
        dim: int,
        chunk_bytes: int,
        host_key_b64: str | None = None,
    ) -> None:
        """embedder_version/dim: a new shard's embedder (each shard keeps its own after,
        backend/retemplating.py). host_key_b64: the host's X25519 public key, which a
        migrating shard's messages carry so terminals can seal new templates to it."""
        self._db = db
        self._accounts = accounts
        self._key = signing_key
        self.embedder_version = embedder_version
        self.dim = dim
        self._chunk_bytes = chunk_bytes
        self._host_key_b64 = host_key_b64

    def embedder(self, conn: Conn, shard_id: str) -> ShardEmbedder:
        return shard_embedder(conn, shard_id, self.embedder_version, self.dim)

    def _next_seq(self, conn: Conn, shard_id: str) -> int:
        row = conn.execute(
            "SELECT seq FROM shards WHERE shard_id = ? FOR UPDATE", (shard_id,)
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO shards (shard_id, seq, embedder_version, dim) VALUES (?, 1, ?, ?)",
                (shard_id, self.embedder_version, self.dim),
            )
            return 1
        conn.execute("UPDATE shards SET seq = seq + 1 WHERE shard_id = ?", (shard_id,))
        return int(row[0]) + 1

    def ensure(self, shard_id: str) -> None:
        """The operator named the shard (a terminal registered for it): it exists from now
        on, empty at version 1 if new. A terminal's request never makes one."""
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM shards WHERE shard_id = ?", (shard_id,)).fetchone():
                return
            self._next_seq(conn, shard_id)

    def _header(self, state: ShardEmbedder) -> dict[str, Any]:
        """The embedder fields every snapshot and delta of the shard carries."""
        header: dict[str, Any] = {"embedder_version": state.version, "dim": state.dim}
        if state.migrating_to is not None and self._host_key_b64 is not None:
            header["migration"] = {
                "embedder_version": state.migrating_to,
                "dim": state.migrating_dim,
                "host_key": self._host_key_b64,
            }
        return header

    def _delta(
        self, shard_id: str, seq: int, ops: list[dict[str, Any]], state: ShardEmbedder
    ) -> dict[str, Any]:
        return {"shard_id": shard_id, "seq": seq, **self._header(state), "ops": ops}

    def enrol(
        self,
        token: str,
        vector: np.ndarray,
        *,
        shard_id: str,
        account: dict[str, Any],
        balance: int | None = None,
        pin: str | None = None,
        embedder_version: str | None = None,
    ) -> dict[str, Any]:
        """Add or replace a customer's template and account; returns the delta to publish.

        A template of the embedder the shard is migrating to is kept for the switch (an
        enrolment template, never replaced by a payment's); the delta then carries the
        account alone."""
        settings = {k: account[k] for k in ("status", "daily_limit", "offline_allowance")}
        with self._db.transaction() as conn:
            state = self.embedder(conn, shard_id)
            version = embedder_version or state.version
            if version == state.version:
                dim = state.dim
            elif version == state.migrating_to and state.migrating_dim is not None:
                dim = state.migrating_dim
            else:
                args = {"version": version, "shard_id": shard_id, "current": state.version}
                if state.migrating_to is None:
                    raise TranslatableError(
                        "template from embedder {version}, shard {shard_id} uses {current}",
                        args=args,
                    )
                raise TranslatableError(
                    "template from embedder {version}, shard {shard_id} uses {current} and"
                    " migrates to {next}",
                    args={**args, "next": state.migrating_to},
                )
            vec = unit_vector(vector, dim)
            existed = self._accounts.upsert(
                conn, token, shard_id, account, balance=balance, pin=pin
            )
            if version == state.version:
                conn.execute(
                    "INSERT INTO templates VALUES (?, ?, ?, ?) ON CONFLICT(token) DO UPDATE SET"
                    " embedder_version = excluded.embedder_version, dim = excluded.dim,"
                    " vector = excluded.vector",
                    (token, version, dim, vec.astype("<f4").tobytes()),
                )
                op = {
                    "op": "update" if existed else "add",
                    "token": token,
                    "vector_b64": vector_b64(vec),
                    "account": settings,
                }
            else:
                store_next_template(conn, token, version, vec, source="enrolment")
                op = {"op": "account", "token": token, "account": settings}
            seq = self._next_seq(conn, shard_id)
            state = self.embedder(conn, shard_id)
        return self._delta(shard_id, seq, [op], state)

    def change(self, token: str, op: str) -> dict[str, Any]:
        """suspend | revoke | reactivate | delete a customer; returns the delta to publish."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT shard_id FROM accounts WHERE token = ?", (token,)).fetchone()
            if row is None:
                raise BlinkpayError(f"unknown token {token}")
            shard_id = row[0]
            if op == "delete":
                conn.execute("DELETE FROM templates WHERE token = ?", (token,))
                conn.execute("DELETE FROM next_templates WHERE token = ?", (token,))
                conn.execute("DELETE FROM accounts WHERE token = ?", (token,))
            elif op in STATUS_OPS:
                conn.execute(
                    "UPDATE accounts SET status = ? WHERE token = ?", (STATUS_OPS[op], token)
                )
            else:
                raise BlinkpayError(f"unknown op {op}")
            seq = self._next_seq(conn, shard_id)
            state = self.embedder(conn, shard_id)
        return self._delta(shard_id, seq, [{"op": op, "token": token}], state)

    @overload
    def snapshot(self, shard_id: str) -> dict[str, Any]: ...

    @overload
    def snapshot(self, shard_id: str, *, create: bool) -> dict[str, Any] | None: ...

    def snapshot(self, shard_id: str, *, create: bool = True) -> dict[str, Any] | None:
        """The whole shard, ready to sign. A shard the operator never made is made only
        with `create` (never for a terminal's request)."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT seq FROM shards WHERE shard_id = ?", (shard_id,)).fetchone()
            if row is None:
                if not create:
                    return None
                self._next_seq(conn, shard_id)
                version = 1
            else:
                version = int(row[0])
            state = self.embedder(conn, shard_id)
            rows = conn.execute(
                "SELECT a.token, t.vector, a.status, a.daily_limit, a.offline_allowance"
                " FROM accounts a JOIN templates t ON t.token = a.token"
                " WHERE a.shard_id = ? AND t.embedder_version = ? ORDER BY a.token",
                (shard_id, state.version),
            ).fetchall()
        records = [
            {
                "token": token,
                "vector_b64": base64.b64encode(blob).decode(),
                "account": {"status": status, "daily_limit": limit, "offline_allowance": allow},
            }
            for token, blob, status, limit, allow in rows
        ]
        return {"shard_id": shard_id, "version": version, **self._header(state), "records": records}

    def recipients(self, shard_id: str) -> list[tuple[str, X25519PublicKey]]:
        """The terminals registered for the shard with an X25519 key, by device id."""
        rows = self._db.query(
            "SELECT device_id, box_key_pem FROM devices"
            " WHERE box_key_pem IS NOT NULL AND home_shard = ? ORDER BY device_id",
            [shard_id],
        )
        return [
            (row["device_id"], load_box_public_key(row["box_key_pem"].encode(), row["device_id"]))
            for row in rows
        ]

    def _seal(self, items: list[dict[str, Any]], shard_id: str) -> tuple[list[Any], dict | None]:
        """Items with vector_b64 -> sealed_b64, and the key_wrap that opens them."""
        if not items:
            return [], None
        content_key = new_content_key()
        sealed = []
        for item in items:
            vector = base64.b64decode(item["vector_b64"])
            rest = {k: v for k, v in item.items() if k != "vector_b64"}
            token = item["token"]
            sealed.append(
                {**rest, "sealed_b64": seal_template(content_key, vector, shard_id, token)}
            )
        return sealed, wrap_content_key(content_key, self.recipients(shard_id), shard_id)

    def wire_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        records, key_wrap = self._seal(snapshot["records"], snapshot["shard_id"])
        wire = {**snapshot, "records": records}
        return {**wire, "key_wrap": key_wrap} if key_wrap else wire

    def wire_delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        vector_ops = [op for op in delta["ops"] if "vector_b64" in op]
        sealed, key_wrap = self._seal(vector_ops, delta["shard_id"])
        opened = iter(sealed)
        ops = [next(opened) if "vector_b64" in op else op for op in delta["ops"]]
        wire = {**delta, "ops": ops}
        return {**wire, "key_wrap": key_wrap} if key_wrap else wire

    def snapshot_envelopes(
        self, snapshot: dict[str, Any], nonce: str | None = None
    ) -> list[dict[str, Any]]:
        """The signed ShardSnapshotChunk payloads of a snapshot (templates sealed), in order;
        each carries the host's time and the request `nonce` it answers, when it answers one
        (what a terminal with no shard yet needs to refuse an old one replayed)."""
        answers: dict[str, Any] = {"issued_at": time.time()}
        if nonce is not None:
            answers["nonce"] = nonce
        blob = json.dumps(self.wire_snapshot(snapshot), separators=(",", ":")).encode()
        digest = hashlib.sha256(blob).hexdigest()
        pieces = [blob[i : i + self._chunk_bytes] for i in range(0, len(blob), self._chunk_bytes)]
        return [
            seal(
                self._key,
                {
                    "kind": "snapshot_chunk",
                    "shard_id": snapshot["shard_id"],
                    "version": snapshot["version"],
                    "index": index,
                    "count": len(pieces),
                    "size": len(blob),
                    "sha256": digest,
                    "data_b64": base64.b64encode(piece).decode(),
                    **answers,
                },
            )
            for index, piece in enumerate(pieces)
        ]

    def delta_envelope(self, delta: dict[str, Any]) -> dict[str, Any]:
        return seal(self._key, {"kind": "delta", "delta": self.wire_delta(delta)})
