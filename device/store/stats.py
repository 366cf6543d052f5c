"""What the store holds, for `blinkpay db stats` and telemetry: counts by status, shard and
embedder version, file sizes (no tokens, no vectors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from device.store.terminal_store import Store


def store_stats(store: Store) -> dict[str, Any]:
    """Counts by status, shard and embedder version, file sizes (no tokens, no vectors)."""
    db = store.database.db
    with store.database.lock:
        statuses = dict(db.execute("SELECT status, count(*) FROM accounts GROUP BY status"))
        templates = int(db.execute("SELECT count(*) FROM templates").fetchone()[0])
        ledger = dict(db.execute("SELECT status, count(*) FROM ledger GROUP BY status"))
    info = store.shard.info()
    path = store.database.path
    wal = path.with_name(path.name + "-wal")
    return {
        "schema_version": store.database.schema_version(),
        "shard": None
        if info is None
        else {
            "shard_id": info.shard_id,
            "version": info.version,
            "last_seq": info.last_seq,
            "embedder_version": info.embedder_version,
            "dim": info.dim,
            "key_id": info.key_id,
            "updated_at": info.updated_at,
        },
        "templates": templates,
        "accounts": {s: int(statuses.get(s, 0)) for s in ("active", "suspended", "revoked")},
        "index": {
            "kind": store.shard.index.kind,
            "templates": len(store.shard.index),
            "resident_bytes": store.shard.index.resident_bytes(),
            "stale_reason": store.shard.stale_reason,
        },
        "ledger": {
            "by_status": {s: int(ledger.get(s, 0)) for s in ("pending", "approved", "declined")},
            "unacknowledged": store.ledger.depth(),
        },
        "file": {
            "path": str(path),
            "bytes": _size(path),
            "wal_bytes": _size(wal),
        },
    }


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
