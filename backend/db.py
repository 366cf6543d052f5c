"""The host's database: accounts and balances, templates, shard sequence, transactions,
authorizations and terminal keys, in SQLite (one machine: WAL, BEGIN IMMEDIATE) or
PostgreSQL (many machines: SERIALIZABLE), through backend/store. The host workers of a
shared subscription share their state here and nowhere else."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from backend.store import Conn, Store, open_store
from backend.store.migrate import migrate
from backend.store.sqlite import SqliteStore

T = TypeVar("T")

# Columns added to `devices` before migrations existed, on a SQLite file made before them.
DEVICE_COLUMNS = {"box_key_pem": "TEXT", "home_shard": "TEXT"}


class HostDb:
    def __init__(self, target: Path | str, *, per_thread: bool = False) -> None:
        """`target`: a SQLite file path, or a `postgresql://` URL (host config `db_url`).
        per_thread: a connection for each thread that uses it (a host worker's handler
        threads, each with its own transaction in flight); else one, shared under a lock."""
        self._target = target
        self._per_thread = per_thread
        self._local = threading.local()
        self._opened: list[Store] = []
        self._opened_lock = threading.Lock()
        first = self._open()
        self.kind = first.kind
        self.path = Path(first.url) if isinstance(first, SqliteStore) else None
        if isinstance(first, SqliteStore):
            self._add_columns(first, "devices", DEVICE_COLUMNS)
        migrate(first)

    def _open(self) -> Store:
        store = open_store(self._target)
        with self._opened_lock:
            self._opened.append(store)
        self._local.store = store
        return store

    @property
    def store(self) -> Store:
        if not self._per_thread:
            return self._opened[0]
        store: Store | None = getattr(self._local, "store", None)
        return store if store is not None else self._open()

    @staticmethod
    def _add_columns(store: SqliteStore, table: str, columns: dict[str, str]) -> None:
        """Columns added after a release, on a database made before it."""
        have = store.columns(table)
        if not have:  # no such table yet: the migrations make it whole
            return
        with store.transaction() as conn:
            for name, kind in columns.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def transaction(self) -> AbstractContextManager[Conn]:
        """One write transaction: SQLite BEGIN IMMEDIATE (one writer across threads and
        processes), PostgreSQL SERIALIZABLE (a conflict raises store.Retryable)."""
        return self.store.transaction()

    def retry(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn` (which opens its own transaction) again while it conflicts with another worker."""
        return self.store.retry(fn, *args, **kwargs)

    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        return self.store.query(sql, params)

    def checkpoint(self) -> None:
        """After an erasure: the deleted template is left in no file (SQLite: secure_delete
        zeroes the freed pages and the WAL is copied back and emptied; PostgreSQL: VACUUM
        reclaims the dead row versions)."""
        self.store.reclaim(("templates", "accounts"))

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, self._opened[:1]
        for store in opened:
            store.close()

    # -- listings for the operator (no keys needed) -----------------------------------------

    def devices(self) -> list[dict[str, Any]]:
        """Every known terminal: whether its key is registered, its shard (the operator's
        choice at `device add --shard`, from then on), the shard and version it last
        reported, and its last contact."""
        rows = self.query(
            "SELECT device_id, public_key_pem IS NOT NULL AS key_registered,"
            " home_shard AS shard_id, shard_id AS reported_shard_id, shard_version,"
            " last_seen FROM devices ORDER BY device_id"
        )
        return [{**row, "key_registered": bool(row["key_registered"])} for row in rows]

    def accounts(self, shard_id: str | None = None) -> list[dict[str, Any]]:
        """Every account without its PIN hash or template: token, shard, status, limits."""
        sql = (
            "SELECT a.token, a.shard_id, a.status, a.balance, a.daily_limit, a.offline_allowance,"
            " a.pin_hash IS NOT NULL AS has_pin, t.embedder_version IS NOT NULL AS has_template"
            " FROM accounts a LEFT JOIN templates t ON t.token = a.token"
        )
        params: list[Any] = []
        if shard_id is not None:
            sql += " WHERE a.shard_id = ?"
            params.append(shard_id)
        rows = self.query(sql + " ORDER BY a.token", params)
        return [
            {**row, "has_pin": bool(row["has_pin"]), "has_template": bool(row["has_template"])}
            for row in rows
        ]
