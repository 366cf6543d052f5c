"""The encrypted template shard: applying snapshots and deltas, loading the index, search.

A delta or snapshot is one SQLite transaction; the in-memory index changes under the
index lock held across the commit, so no search sees a revoked user after the commit
nor a half-applied update before it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from device.core.config import MatchConfig
from device.core.match import MatchDecision, decide
from device.store.db import StoreDatabase
from device.store.index import TemplateIndex
from device.store.keys import DataKey, KeyFileError
from device.store.sealing import TemplateSealer
from device.store.updates import (
    MALFORMED,
    STATUS_OPS,
    TOKEN_EXISTS,
    UNKNOWN_TOKEN,
    WRONG_EMBEDDER_VERSION,
    WRONG_SHARD,
    Account,
    Header,
    Refusal,
    parse_delta,
    parse_snapshot,
)

log = logging.getLogger(__name__)

Outcome = Literal["applied", "duplicate", "needs_snapshot", "refused"]
_CHUNK = 500  # tokens per IN (...) query, below SQLite's variable limit


@dataclass(frozen=True)
class ApplyResult:
    outcome: Outcome
    version: int  # shard version after the call (0: no shard yet)
    reason: str | None = None  # refusal reason code
    detail: str = ""
    changed: int = 0


@dataclass(frozen=True)
class ShardInfo:
    shard_id: str
    version: int
    last_seq: int
    embedder_version: str
    dim: int
    key_id: str
    updated_at: str


@dataclass(frozen=True)
class AccountState:
    token: str
    status: str
    daily_limit: int
    offline_allowance: int
    offline_used: int

    @property
    def offline_remaining(self) -> int:
        return max(0, self.offline_allowance - self.offline_used)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class TemplateShard:
    """embedder_version/dim: what this device's embedder produces (None: take the shard's).
    shard_id: the shard this device belongs to (None: the first snapshot decides)."""

    def __init__(
        self,
        database: StoreDatabase,
        key: DataKey,
        embedder_version: str | None = None,
        dim: int | None = None,
        shard_id: str | None = None,
        search_threads: int = 2,
    ) -> None:
        self.database = database
        self._sealer = TemplateSealer(key)
        self._expected = (
            Header(shard_id or "", 0, embedder_version, dim)
            if embedder_version is not None and dim is not None
            else None
        )
        self._shard_id = shard_id
        self._threads = search_threads
        self._apply_lock = threading.RLock()
        self._refusals: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self.stale_reason: str | None = None  # why the index is empty although rows exist
        info = self.info()
        if info is not None and info.key_id != key.key_id:
            raise KeyFileError(
                f"the data key (id {key.key_id}) is not the one this database was encrypted "
                f"with (id {info.key_id}); restore the right key file"
            )
        self.index = TemplateIndex(dim or (info.dim if info else 128), search_threads)
        self._load()

    # ---- reading -------------------------------------------------------------------------

    def info(self) -> ShardInfo | None:
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT shard_id, version, last_seq, embedder_version, dim, key_id, updated_at "
                "FROM shard WHERE id = 1"
            ).fetchone()
        return ShardInfo(*row) if row else None

    def account(self, token: str) -> AccountState | None:
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT token, status, daily_limit, offline_allowance, offline_used "
                "FROM accounts WHERE token = ?",
                [token],
            ).fetchone()
        return AccountState(*row) if row else None

    def decrypt_rows(
        self, info: ShardInfo, where: str = "", params: Sequence[Any] = ()
    ) -> Iterator[tuple[str, bytes]]:
        """(token, float32 bytes) of stored templates; raises UnsealError on a bad record."""
        sql = "SELECT token, nonce, ciphertext FROM templates"
        with self.database.lock:
            rows = self.database.db.execute(sql + where, list(params)).fetchall()
        return self._sealer.unseal_many(info.shard_id, info.embedder_version, rows)

    def _load(self) -> None:
        info = self.info()
        if info is None:
            return
        expected = self._expected
        if expected is not None and (
            info.embedder_version != expected.embedder_version or info.dim != expected.dim
        ):
            self.stale_reason = (
                f"shard holds embedder {info.embedder_version!r} dim {info.dim}, device runs "
                f"{expected.embedder_version!r} dim {expected.dim}: needs a snapshot"
            )
            log.warning("template index not loaded: %s", self.stale_reason)
            return
        active = set(self.tokens_with_status(["active"]))
        tokens: list[str] = []
        raw = bytearray()
        for token, data in self.decrypt_rows(info):
            if token in active:
                tokens.append(token)
                raw += data
        vectors = np.frombuffer(bytes(raw), dtype="<f4").reshape(len(tokens), info.dim)
        self.index = TemplateIndex(info.dim, self._threads)
        self.index.build(tokens, vectors)

    # ---- search --------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int = 2) -> list[tuple[str, float]]:
        return self.index.search(query, k)

    def identify(self, query: np.ndarray, config: MatchConfig) -> MatchDecision:
        """Search and decide; only active accounts are in the index, so only they match."""
        return decide(self.index.search(query, config.candidates + 1), config)

    # ---- counters ------------------------------------------------------------------------

    def refusals(self) -> dict[str, int]:
        """Refused updates by reason since start (for telemetry)."""
        return dict(self._refusals)

    def outcomes(self) -> dict[str, int]:
        return dict(self._outcomes)

    # ---- applying updates ----------------------------------------------------------------

    def _refuse(self, kind: str, exc: Refusal, version: int) -> ApplyResult:
        self._refusals[exc.reason] += 1
        self._outcomes["refused"] += 1
        log.warning("%s refused: %s", kind, exc)
        self._audit(f"{kind}_refused", {"reason": exc.reason, "detail": exc.detail})
        return ApplyResult("refused", version, exc.reason, exc.detail)

    def _done(self, outcome: Outcome, version: int, detail: str = "", changed: int = 0):
        self._outcomes[outcome] += 1
        return ApplyResult(outcome, version, None, detail, changed)

    def _audit(self, event: str, detail: Mapping[str, Any], db: Any = None) -> None:
        target = db if db is not None else self.database.db
        with self.database.lock:
            target.execute(
                "INSERT INTO audit (event, detail) VALUES (?, ?)",
                [event, json.dumps(detail, sort_keys=True)],
            )

    def _check_shard(self, header: Header, info: ShardInfo | None) -> None:
        wanted = self._shard_id or (info.shard_id if info else None)
        if wanted is not None and header.shard_id != wanted:
            raise Refusal(WRONG_SHARD, f"update is for shard {header.shard_id!r}, not {wanted!r}")
        if (
            info is not None
            and self._expected is None
            and header.embedder_version != info.embedder_version
        ):
            raise Refusal(
                WRONG_EMBEDDER_VERSION,
                f"update is for embedder {header.embedder_version!r}, shard holds "
                f"{info.embedder_version!r}",
            )

    @contextmanager
    def _commit_with_index(self) -> Iterator[Any]:
        # The index lock spans the commit: searches see the old or the new shard, never both.
        with self.index.lock, self.database.transaction() as db:
            yield db

    def apply_snapshot(self, snapshot: Any) -> ApplyResult:
        with self._apply_lock:
            info = self.info()
            current = info.version if info else 0
            try:
                parsed = parse_snapshot(snapshot, self._expected)
                self._check_shard(parsed.header, info if self.stale_reason is None else None)
            except Refusal as exc:
                return self._refuse("snapshot", exc, current)
            header = parsed.header
            if info is not None and self.stale_reason is None and header.number <= current:
                return self._done("duplicate", current, f"snapshot {header.number} <= {current}")
            rows = []
            for i, token in enumerate(parsed.tokens):
                nonce, ct = self._sealer.seal(
                    token, header.shard_id, header.embedder_version, parsed.vectors[i].tobytes()
                )
                rows.append((token, nonce, ct))
            active = [i for i, a in enumerate(parsed.accounts) if a.status == "active"]
            index = TemplateIndex(header.dim, self._threads)
            index.build([parsed.tokens[i] for i in active], parsed.vectors[active])
            with self._commit_with_index() as db:
                db.execute("DELETE FROM templates")
                db.execute("DELETE FROM accounts")
                db.conn.executemany(
                    "INSERT INTO templates (token, nonce, ciphertext) VALUES (?, ?, ?)", rows
                )
                db.conn.executemany(
                    "INSERT INTO accounts (token, status, daily_limit, offline_allowance) "
                    "VALUES (?, ?, ?, ?)",
                    [
                        (t, a.status, a.daily_limit, a.offline_allowance)
                        for t, a in zip(parsed.tokens, parsed.accounts, strict=True)
                    ],
                )
                self._write_meta(db, header, header.number)
                self._audit(
                    "snapshot_applied",
                    {"shard": header.shard_id, "version": header.number, "records": len(rows)},
                    db,
                )
                old, self.index = self.index, index
                old.clear()
            self.stale_reason = None
            return self._done("applied", header.number, changed=len(rows))

    def _write_meta(self, db: Any, header: Header, version: int) -> None:
        db.execute(
            "INSERT INTO shard (id, shard_id, version, last_seq, embedder_version, dim, key_id) "
            "VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "shard_id = excluded.shard_id, version = excluded.version, "
            "last_seq = excluded.last_seq, embedder_version = excluded.embedder_version, "
            "dim = excluded.dim, key_id = excluded.key_id, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            [
                header.shard_id,
                version,
                version,
                header.embedder_version,
                header.dim,
                self._sealer.key_id,
            ],
        )

    def _existing(self, db: Any, tokens: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in _chunks(tokens):
            marks = ",".join("?" * len(part))
            sql = f"SELECT token, status FROM accounts WHERE token IN ({marks})"
            found.update(db.execute(sql, list(part)).fetchall())
        return found

    def apply_delta(self, delta: Any) -> ApplyResult:
        with self._apply_lock:
            info = self.info()
            current = info.version if info else 0
            try:
                parsed = parse_delta(delta, self._expected)
                self._check_shard(parsed.header, info)
            except Refusal as exc:
                return self._refuse("delta", exc, current)
            header = parsed.header
            if info is None or self.stale_reason is not None:
                return self._done("needs_snapshot", current, "no usable shard yet")
            if header.dim != info.dim:
                exc = Refusal("wrong_dim", f"delta has dim {header.dim}, shard has {info.dim}")
                return self._refuse("delta", exc, current)
            if header.number <= current:
                return self._done("duplicate", current, f"seq {header.number} <= {current}")
            if header.number > current + 1:
                return self._done(
                    "needs_snapshot", current, f"seq {header.number} after {current}: gap"
                )
            try:
                with self._commit_with_index() as db:
                    drop, keep = self._write_delta(db, parsed, info)
                    self._write_meta(db, header, header.number)
                    counts = Counter(op.kind for op in parsed.ops)
                    changed = {
                        kind: [op.token for op in parsed.ops if op.kind == kind][:100]
                        for kind in (*STATUS_OPS, "delete")
                        if counts[kind]
                    }
                    self._audit(
                        "delta_applied",
                        {"seq": header.number, "ops": dict(counts), "tokens": changed},
                        db,
                    )
                    self.index.remove(drop)
                    self.index.upsert(*keep)
            except Refusal as exc:
                return self._refuse("delta", exc, current)
            return self._done("applied", header.number, changed=len(parsed.ops))

    def _write_delta(
        self, db: Any, parsed: Any, info: ShardInfo
    ) -> tuple[list[str], tuple[list[str], np.ndarray]]:
        """Write the ops; returns tokens to drop from the index and (tokens, vectors) to add."""
        tokens = [op.token for op in parsed.ops]
        existing = self._existing(db, tokens)
        templates: list[tuple[str, bytes, bytes]] = []
        accounts: list[tuple[str, str, int, int]] = []
        statuses: list[tuple[str, str]] = []
        deletes: list[str] = []
        drop: list[str] = []
        keep_tokens: list[str] = []
        keep_vectors: list[np.ndarray] = []
        revived: list[str] = []
        for i, op in enumerate(parsed.ops):
            if op.kind == "add":
                if op.token in existing:
                    raise Refusal(TOKEN_EXISTS, f"ops[{i}]: token {op.token!r} already enrolled")
            elif op.token not in existing:
                raise Refusal(UNKNOWN_TOKEN, f"ops[{i}]: {op.kind} of unknown token {op.token!r}")
            status = self._new_status(op, existing.get(op.token))
            if op.kind in ("add", "update"):
                vector = parsed.vectors[op.row]
                templates.append(
                    (
                        op.token,
                        *self._sealer.seal(
                            op.token, info.shard_id, info.embedder_version, vector.tobytes()
                        ),
                    )
                )
                if status == "active":
                    keep_tokens.append(op.token)
                    keep_vectors.append(vector)
            elif status == "active" and op.token not in self.index:
                revived.append(op.token)
            if op.account is not None:
                account: Account = op.account
                accounts.append(
                    (op.token, account.status, account.daily_limit, account.offline_allowance)
                )
            elif op.kind in STATUS_OPS:
                statuses.append((STATUS_OPS[op.kind], op.token))
            if op.kind == "delete":
                deletes.append(op.token)
            if status != "active":
                drop.append(op.token)
        db.conn.executemany(
            "INSERT INTO templates (token, nonce, ciphertext) VALUES (?, ?, ?) "
            "ON CONFLICT (token) DO UPDATE SET nonce = excluded.nonce, "
            "ciphertext = excluded.ciphertext",
            templates,
        )
        # An account record from the host restates the allowance: local usage restarts.
        db.conn.executemany(
            "INSERT INTO accounts (token, status, daily_limit, offline_allowance) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET status = excluded.status, "
            "daily_limit = excluded.daily_limit, offline_allowance = excluded.offline_allowance, "
            "offline_used = 0, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            accounts,
        )
        db.conn.executemany(
            "UPDATE accounts SET status = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE token = ?",
            statuses,
        )
        db.conn.executemany("DELETE FROM templates WHERE token = ?", [(t,) for t in deletes])
        db.conn.executemany("DELETE FROM accounts WHERE token = ?", [(t,) for t in deletes])
        for part in _chunks(revived):
            marks = ",".join("?" * len(part))
            for token, data in self.decrypt_rows(info, f" WHERE token IN ({marks})", part):
                keep_tokens.append(token)
                keep_vectors.append(np.frombuffer(data, dtype="<f4"))
        vectors = np.stack(keep_vectors) if keep_vectors else np.zeros((0, info.dim), np.float32)
        return drop, (keep_tokens, vectors)

    @staticmethod
    def _new_status(op: Any, old: str | None) -> str:
        if op.account is not None:
            return op.account.status
        if op.kind == "delete":
            return "deleted"
        if op.kind in STATUS_OPS:
            return STATUS_OPS[op.kind]
        if old is None:
            raise Refusal(MALFORMED, f"{op.kind} of {op.token!r} without an account")
        return old

    # ---- keys ----------------------------------------------------------------------------

    def rekey(self, new_key: DataKey) -> int:
        """Re-encrypt every template under new_key in one transaction. Returns how many."""
        with self._apply_lock:
            info = self.info()
            new_sealer = TemplateSealer(new_key)
            if info is None:
                self._sealer = new_sealer
                return 0
            rows = [
                (*new_sealer.seal(token, info.shard_id, info.embedder_version, data), token)
                for token, data in self.decrypt_rows(info)
            ]
            with self.database.transaction() as db:
                db.conn.executemany(
                    "UPDATE templates SET nonce = ?, ciphertext = ? WHERE token = ?", rows
                )
                db.execute("UPDATE shard SET key_id = ? WHERE id = 1", [new_key.key_id])
                self._audit("rekeyed", {"templates": len(rows), "key_id": new_key.key_id}, db)
            self._sealer = new_sealer
            return len(rows)

    def tokens_with_status(self, statuses: Iterable[str]) -> list[str]:
        wanted = list(statuses)
        marks = ",".join("?" * len(wanted))
        with self.database.lock:
            rows = self.database.db.execute(
                f"SELECT token FROM accounts WHERE status IN ({marks}) ORDER BY token", wanted
            ).fetchall()
        return [row[0] for row in rows]
