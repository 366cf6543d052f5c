"""Writing parsed shard updates into the tables, inside the caller's transaction.

Nothing here commits: TemplateShard wraps each call in one transaction, so a refusal
raised halfway (unknown token, token already enrolled) leaves the database untouched.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from device.store.sealing import TemplateSealer
from device.store.updates import (
    MALFORMED,
    STATUS_OPS,
    TOKEN_EXISTS,
    UNKNOWN_TOKEN,
    Header,
    Op,
    ParsedDelta,
    ParsedSnapshot,
    Refusal,
)

_CHUNK = 500  # tokens per IN (...) query, below SQLite's variable limit
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


@dataclass
class IndexChange:
    """What the in-memory index must do once the transaction has committed."""

    drop: list[str] = field(default_factory=list)
    keep_tokens: list[str] = field(default_factory=list)
    keep_vectors: list[np.ndarray] = field(default_factory=list)

    def vectors(self, dim: int) -> np.ndarray:
        if not self.keep_vectors:
            return np.zeros((0, dim), np.float32)
        return np.stack(self.keep_vectors)


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def audit(db: Any, event: str, detail: Mapping[str, Any]) -> None:
    db.execute(
        "INSERT INTO audit (event, detail) VALUES (?, ?)",
        [event, json.dumps(detail, sort_keys=True)],
    )


def write_meta(db: Any, header: Header, key_id: str) -> None:
    migration = None if header.migration is None else json.dumps(asdict(header.migration))
    db.execute(
        "INSERT INTO shard (id, shard_id, version, last_seq, embedder_version, dim, key_id, "
        "migration) VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "shard_id = excluded.shard_id, version = excluded.version, "
        "last_seq = excluded.last_seq, embedder_version = excluded.embedder_version, "
        f"dim = excluded.dim, key_id = excluded.key_id, migration = excluded.migration, "
        f"updated_at = {_NOW}",
        [
            header.shard_id,
            header.number,
            header.number,
            header.embedder_version,
            header.dim,
            key_id,
            migration,
        ],
    )


def write_snapshot(db: Any, parsed: ParsedSnapshot, sealer: TemplateSealer) -> None:
    """Replace every template and account (secure_delete overwrites the old rows)."""
    header = parsed.header
    rows = [
        (token, *sealer.seal(token, header.shard_id, header.embedder_version, vector.tobytes()))
        for token, vector in zip(parsed.tokens, parsed.vectors, strict=True)
    ]
    db.execute("DELETE FROM templates")
    db.execute("DELETE FROM accounts")
    db.conn.executemany("INSERT INTO templates (token, nonce, ciphertext) VALUES (?, ?, ?)", rows)
    db.conn.executemany(
        "INSERT INTO accounts (token, status, daily_limit, offline_allowance) VALUES (?, ?, ?, ?)",
        [
            (token, a.status, a.daily_limit, a.offline_allowance)
            for token, a in zip(parsed.tokens, parsed.accounts, strict=True)
        ],
    )
    write_meta(db, header, sealer.key_id)


def _statuses(db: Any, tokens: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in chunks(tokens):
        marks = ",".join("?" * len(part))
        sql = f"SELECT token, status FROM accounts WHERE token IN ({marks})"
        found.update(db.execute(sql, list(part)).fetchall())
    return found


def _new_status(op: Op, old: str | None) -> str:
    if op.account is not None:
        return op.account.status
    if op.kind == "delete":
        return "deleted"
    if op.kind in STATUS_OPS:
        return STATUS_OPS[op.kind]
    if old is None:
        raise Refusal(MALFORMED, f"{op.kind} of {op.token!r} without an account")
    return old


def write_delta(
    db: Any, parsed: ParsedDelta, sealer: TemplateSealer, indexed: Container[str]
) -> IndexChange:
    """Write the ops (the header was checked against the shard); returns the index change.

    indexed: tokens now in the index, so a reactivated user's stored template is reloaded.
    """
    header = parsed.header
    existing = _statuses(db, [op.token for op in parsed.ops])
    change = IndexChange()
    templates: list[tuple[str, bytes, bytes]] = []
    accounts: list[tuple[str, str, int, int]] = []
    statuses: list[tuple[str, str]] = []
    deletes: list[tuple[str]] = []
    revived: list[str] = []
    for i, op in enumerate(parsed.ops):
        if op.kind == "add" and op.token in existing:
            raise Refusal(TOKEN_EXISTS, f"ops[{i}]: token {op.token!r} already enrolled")
        if op.kind != "add" and op.token not in existing:
            raise Refusal(UNKNOWN_TOKEN, f"ops[{i}]: {op.kind} of unknown token {op.token!r}")
        status = _new_status(op, existing.get(op.token))
        if op.row is not None:
            vector = parsed.vectors[op.row]
            sealed = sealer.seal(
                op.token, header.shard_id, header.embedder_version, vector.tobytes()
            )
            templates.append((op.token, *sealed))
            if status == "active":
                change.keep_tokens.append(op.token)
                change.keep_vectors.append(vector)
        elif status == "active" and op.token not in indexed:
            revived.append(op.token)
        if op.account is not None:
            account = op.account
            accounts.append(
                (op.token, account.status, account.daily_limit, account.offline_allowance)
            )
        elif op.kind in STATUS_OPS:
            statuses.append((STATUS_OPS[op.kind], op.token))
        if op.kind == "delete":
            deletes.append((op.token,))
        if status != "active":
            change.drop.append(op.token)
    db.conn.executemany(
        "INSERT INTO templates (token, nonce, ciphertext) VALUES (?, ?, ?) "
        "ON CONFLICT (token) DO UPDATE SET nonce = excluded.nonce, "
        "ciphertext = excluded.ciphertext",
        templates,
    )
    # What was spent offline stays in the ledger (per UTC day, as the host counts it): an
    # account record from the host changes the allowance, not what was spent against it.
    db.conn.executemany(
        "INSERT INTO accounts (token, status, daily_limit, offline_allowance) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET status = excluded.status, "
        "daily_limit = excluded.daily_limit, offline_allowance = excluded.offline_allowance, "
        f"updated_at = {_NOW}",
        accounts,
    )
    db.conn.executemany(
        f"UPDATE accounts SET status = ?, updated_at = {_NOW} WHERE token = ?", statuses
    )
    db.conn.executemany("DELETE FROM templates WHERE token = ?", deletes)
    db.conn.executemany("DELETE FROM accounts WHERE token = ?", deletes)
    for part in chunks(revived):
        marks = ",".join("?" * len(part))
        rows = db.execute(
            f"SELECT token, nonce, ciphertext FROM templates WHERE token IN ({marks})", list(part)
        ).fetchall()
        # A damaged record stays out of the index, as at load; verify reports it.
        bad: list[str] = []
        for token, data in sealer.unseal_many(header.shard_id, header.embedder_version, rows, bad):
            change.keep_tokens.append(token)
            change.keep_vectors.append(np.frombuffer(data, dtype="<f4"))
    write_meta(db, header, sealer.key_id)
    return change
