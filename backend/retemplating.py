"""Changing a shard's embedder without stored photos (docs/matching.md, "Changing the
embedder"): the migration's state per shard, the new-version templates terminals send
for faces they just matched and were paid by, coverage, and the operator's switch.

A shard has one active embedder: its `templates` rows, the only ones its snapshots and
deltas carry. While it migrates to another embedder, `next_templates` collects that
embedder's templates: from a paid live face (a terminal's `retemplate` message, checked
in backend/retemplate_inbox.py) or from an enrolment made with the new embedder. The
switch makes them the shard's templates in one transaction and deletes the old
version's; customers without a template of the new version then have none on any
terminal and re-enrol (docs/console.md).

The rule between the two sources: a template from an enrolment is never replaced by one
from a payment; a payment template replaces an older payment template (the latest paid
face of that customer, so one poor capture is not kept for good).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.db import HostDb
from backend.store import Conn
from device.errors import BlinkpayError, TranslatableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardEmbedder:
    """A shard's active embedder and the one it is migrating to (None: no migration)."""

    shard_id: str
    version: str
    dim: int
    migrating_to: str | None = None
    migrating_dim: int | None = None


def shard_embedder(
    conn: Conn, shard_id: str, default_version: str, default_dim: int
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
    conn: Conn,
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
        "INSERT INTO next_templates VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(token, embedder_version) DO UPDATE SET dim = excluded.dim,"
        " vector = excluded.vector, source = excluded.source, tx_id = excluded.tx_id,"
        " device_id = excluded.device_id, created_at = excluded.created_at",
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
    """The operator's side: start, cancel, coverage, switch (a terminal's retemplate
    message is checked by backend/retemplate_inbox.py)."""

    def __init__(self, db: HostDb, *, default_version: str, default_dim: int) -> None:
        self._db = db
        self.default_version, self.default_dim = default_version, default_dim

    def embedder(self, shard_id: str) -> ShardEmbedder:
        with self._db.transaction() as conn:
            return shard_embedder(conn, shard_id, *self._defaults)

    @property
    def _defaults(self) -> tuple[str, int]:
        return self.default_version, self.default_dim

    # -- operator ---------------------------------------------------------------------------

    def start(self, shard_id: str, version: str, dim: int) -> ShardEmbedder:
        """Begin collecting `version` templates for the shard; bumps the shard's sequence
        (the caller publishes a snapshot, which tells the terminals)."""
        if not version or len(version) > 64 or not 0 < dim <= 4096:
            raise TranslatableError("an embedder version of 1..64 characters and a dim of 1..4096")
        with self._db.transaction() as conn:
            current = shard_embedder(conn, shard_id, *self._defaults)
            if version == current.version:
                raise TranslatableError(
                    "shard {shard_id} already uses {version}",
                    args={"shard_id": shard_id, "version": version},
                )
            if current.migrating_to not in (None, version):
                raise TranslatableError(
                    "shard {shard_id} is migrating to {other}; cancel that first"
                    " (`blinkpay-host shard cancel`)",
                    args={"shard_id": shard_id, "other": current.migrating_to},
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
                raise TranslatableError(
                    "shard {shard_id} is not migrating", args={"shard_id": shard_id}
                )
            self._drop_next(conn, shard_id, current.migrating_to)
            conn.execute(
                "UPDATE shards SET migrating_to = NULL, migrating_dim = NULL, seq = seq + 1"
                " WHERE shard_id = ?",
                (shard_id,),
            )
        return self.embedder(shard_id)

    def coverage(self, shard_id: str) -> dict[str, Any]:
        """How many of the shard's customers have a template of the next embedder."""
        with self._db.transaction() as conn:
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
            raise TranslatableError(
                "shard {shard_id} is not migrating", args={"shard_id": shard_id}
            )
        if cover["coverage"] < min_coverage:
            raise TranslatableError(
                "coverage {coverage} is below the {least} asked for",
                args={"coverage": f"{cover['coverage']:.1%}", "least": f"{min_coverage:.1%}"},
            )
        version, dim = cover["migrating_to"], cover["migrating_dim"]
        with self._db.transaction() as conn:
            now = shard_embedder(conn, shard_id, *self._defaults)
            if now.migrating_to != version:  # changed since the coverage was read
                raise TranslatableError(
                    "shard {shard_id}: the migration changed; try again",
                    args={"shard_id": shard_id},
                )
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
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT a.token FROM accounts a LEFT JOIN templates t ON t.token = a.token"
                " WHERE a.shard_id = ? AND t.token IS NULL ORDER BY a.token",
                (shard_id,),
            ).fetchall()
        return [row[0] for row in rows]

    @staticmethod
    def _ensure_row(conn: Conn, state: ShardEmbedder) -> None:
        conn.execute(
            "INSERT INTO shards (shard_id, seq, embedder_version, dim)"
            " VALUES (?, 1, ?, ?) ON CONFLICT DO NOTHING",
            (state.shard_id, state.version, state.dim),
        )

    @staticmethod
    def _drop_next(conn: Conn, shard_id: str, version: str | None) -> None:
        sql = (
            "DELETE FROM next_templates WHERE token IN"
            " (SELECT token FROM accounts WHERE shard_id = ?)"
        )
        params: tuple[Any, ...] = (shard_id,)
        if version is not None:
            sql += " AND embedder_version = ?"
            params += (version,)
        conn.execute(sql, params)
