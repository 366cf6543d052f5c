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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from device.crypto.signing import KeyFileError
from device.store.db import StoreDatabase
from device.store.index_choice import SearchIndex, new_index, resolve
from device.store.keys import DataKey
from device.store.sealing import TemplateSealer
from device.store.shard_writes import audit, write_delta, write_snapshot
from device.store.updates import (
    STATUS_OPS,
    WRONG_DIM,
    WRONG_EMBEDDER_VERSION,
    WRONG_SHARD,
    Header,
    Migration,
    ParsedDelta,
    Refusal,
    parse_delta,
    parse_snapshot,
)

log = logging.getLogger(__name__)

Outcome = Literal["applied", "duplicate", "needs_snapshot", "refused"]


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
    migration_json: str | None = None

    @property
    def migration(self) -> Migration | None:
        """The embedder the shard is migrating to, as the last update said."""
        if not self.migration_json:
            return None
        return Migration(**json.loads(self.migration_json))


@dataclass(frozen=True)
class StoredAccount:
    """An account row of the shard: the host's settings for it (what is left of the offline
    allowance comes from the ledger: Ledger.offline_remaining)."""

    token: str
    status: str
    daily_limit: int
    offline_allowance: int


def _delta_summary(parsed: ParsedDelta) -> dict[str, Any]:
    """For the audit log: op counts and (up to 100 per kind) the tokens taken out."""
    counts = Counter(op.kind for op in parsed.ops)
    tokens = {
        kind: [op.token for op in parsed.ops if op.kind == kind][:100]
        for kind in (*STATUS_OPS, "delete")
        if counts[kind]
    }
    return {"seq": parsed.header.number, "ops": dict(counts), "tokens": tokens}


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
        index_kind: str = "auto",
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
        self._index_kind = resolve(index_kind)  # decided once: every rebuild uses the same
        self._apply_lock = threading.RLock()
        self._refusals: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self.stale_reason: str | None = None  # why the index is empty although rows exist
        # (embedder, dim) of the last signed update refused for being of another embedder
        # than this device runs: the shard was switched (device/shell/migration.py).
        self.offered_embedder: tuple[str, int] | None = None
        self.undecryptable: list[str] = []  # tokens whose records failed to decrypt at load
        info = self.info()
        if info is not None and info.key_id != key.key_id:
            raise KeyFileError(
                f"the data key (id {key.key_id}) is not the one this database was encrypted "
                f"with (id {info.key_id}); restore the right key file"
            )
        self.index: SearchIndex = self._new_index(dim or (info.dim if info else 128))
        # The index and the embedder of the templates in it, swapped as one reference.
        self._indexed: tuple[SearchIndex, str | None] = (self.index, None)
        self._load()

    def _new_index(self, dim: int) -> SearchIndex:
        return new_index(dim, self._threads, self._index_kind)

    # ---- reading -------------------------------------------------------------------------

    @property
    def sealer(self) -> TemplateSealer:
        return self._sealer

    def info(self) -> ShardInfo | None:
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT shard_id, version, last_seq, embedder_version, dim, key_id, updated_at, "
                "migration FROM shard WHERE id = 1"
            ).fetchone()
        return ShardInfo(*row) if row else None

    def account(self, token: str) -> StoredAccount | None:
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT token, status, daily_limit, offline_allowance FROM accounts "
                "WHERE token = ?",
                [token],
            ).fetchone()
        return StoredAccount(*row) if row else None

    def decrypt_rows(
        self, info: ShardInfo, bad: list[str] | None = None
    ) -> Iterator[tuple[str, bytes]]:
        """(token, float32 bytes) of stored templates; a bad record raises UnsealError,
        or is skipped and listed in `bad` when that is given."""
        with self.database.lock:
            rows = self.database.db.execute(
                "SELECT token, nonce, ciphertext FROM templates"
            ).fetchall()
        return self._sealer.unseal_many(info.shard_id, info.embedder_version, rows, bad)

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
        bad: list[str] = []
        for token, data in self.decrypt_rows(info, bad):
            if token in active:
                tokens.append(token)
                raw += data
        self.undecryptable = bad
        if bad:
            log.error(
                "%d template records do not decrypt and are left out of the index "
                "(run `blinkpay db verify`; the next snapshot replaces them)",
                len(bad),
            )
        vectors = np.frombuffer(bytes(raw), dtype="<f4").reshape(len(tokens), info.dim)
        self.index = self._new_index(info.dim)
        self.index.build(tokens, vectors)
        self._indexed = (self.index, info.embedder_version)

    # ---- search --------------------------------------------------------------------------

    def search(
        self, query: np.ndarray, k: int = 2, embedder_version: str | None = None
    ) -> list[tuple[str, float]]:
        """The k nearest active templates. A probe of another embedder than the indexed
        templates' is never compared (no candidates, counted as `wrong_probe_embedder`):
        vectors of two embedders live in unrelated spaces, so any score would be noise."""
        index, indexed = self._indexed
        if embedder_version is not None and embedder_version != indexed:
            self._refusals["wrong_probe_embedder"] += 1
            return []
        return index.search(query, k)

    @property
    def index_embedder(self) -> str | None:
        """The embedder version of the templates in the index (None: nothing loaded)."""
        return self._indexed[1]

    @property
    def gallery_size(self) -> int:
        """Active templates searched (the match threshold rises with it)."""
        return len(self.index)

    # ---- counters ------------------------------------------------------------------------

    def refusals(self) -> dict[str, int]:
        """Refused updates by reason since start (for telemetry)."""
        return dict(self._refusals)

    def outcomes(self) -> dict[str, int]:
        return dict(self._outcomes)

    # ---- applying updates ----------------------------------------------------------------

    def _refuse(self, kind: str, exc: Refusal, version: int) -> ApplyResult:
        self._refusals[exc.reason] += 1
        if exc.offered is not None:
            self.offered_embedder = exc.offered
        self._outcomes["refused"] += 1
        log.warning("%s refused: %s", kind, exc)
        with self.database.lock:
            audit(
                self.database.db,
                f"{kind}_refused",
                {"reason": exc.reason, "detail": exc.detail},
            )
        return ApplyResult("refused", version, exc.reason, exc.detail)

    def _done(self, outcome: Outcome, version: int, detail: str = "", changed: int = 0):
        self._outcomes[outcome] += 1
        return ApplyResult(outcome, version, None, detail, changed)

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

    def apply_snapshot(self, snapshot: Any) -> ApplyResult:
        """Replace the whole shard (one transaction); an older or equal version is ignored."""
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
            active = [i for i, a in enumerate(parsed.accounts) if a.status == "active"]
            index = self._new_index(header.dim)
            index.build([parsed.tokens[i] for i in active], parsed.vectors[active])
            # The index lock spans commit and swap: searches see the old or the new shard.
            with self.index.lock:
                with self.database.transaction() as db:
                    write_snapshot(db, parsed, self._sealer)
                    audit(
                        db,
                        "snapshot_applied",
                        {
                            "shard": header.shard_id,
                            "version": header.number,
                            "records": len(parsed.tokens),
                        },
                    )
                old, self.index = self.index, index
                self._indexed = (index, header.embedder_version)
                old.clear()
            self.stale_reason = None
            return self._done("applied", header.number, changed=len(parsed.tokens))

    def apply_delta(self, delta: Any) -> ApplyResult:
        """Apply the next delta whole or not at all (one transaction)."""
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
                exc = Refusal(WRONG_DIM, f"delta has dim {header.dim}, shard has {info.dim}")
                return self._refuse("delta", exc, current)
            if header.number <= current:
                return self._done("duplicate", current, f"seq {header.number} <= {current}")
            if header.number > current + 1:
                return self._done(
                    "needs_snapshot", current, f"seq {header.number} after {current}: gap"
                )
            try:
                # Index lock across commit and index change: no search sees a revoked user
                # after the commit, nor a half-applied delta before it.
                with self.index.lock:
                    with self.database.transaction() as db:
                        change = write_delta(db, parsed, self._sealer, self.index)
                        audit(db, "delta_applied", _delta_summary(parsed))
                    self.index.remove(change.drop)
                    self.index.upsert(change.keep_tokens, change.vectors(info.dim))
            except Refusal as exc:
                return self._refuse("delta", exc, current)
            return self._done("applied", header.number, changed=len(parsed.ops))

    def expect(self, embedder_version: str, dim: int) -> None:
        """This device now runs another embedder: the index of the old one is dropped at
        once (no probe of the new embedder meets it) and the next snapshot of the new one
        is taken; until then nothing matches."""
        with self._apply_lock:
            self._expected = Header(self._shard_id or "", 0, embedder_version, dim)
            with self.index.lock:
                old, self.index = self.index, self._new_index(dim)
                self._indexed = (self.index, None)
                old.clear()
            self.stale_reason = None
            self.offered_embedder = None
            self._load()  # the stored shard, when it is of the new embedder already

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
                audit(db, "rekeyed", {"templates": len(rows), "key_id": new_key.key_id})
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
