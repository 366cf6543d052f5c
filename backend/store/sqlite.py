"""SQLite: one file, WAL, BEGIN IMMEDIATE (one writer at a time across threads and the
host processes of one machine)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from backend.store.base import Conn, Params, Retryable, Store
from device.store.db import make_private

BUSY_TIMEOUT_MS = 10_000

# One writer lock per file for the connections of this process: they queue here instead of
# in SQLite's busy handler, which sleeps up to 100 ms between tries.
_WRITERS: dict[Path, threading.RLock] = {}
_WRITERS_LOCK = threading.Lock()


def _writer(path: Path) -> threading.RLock:
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(path.resolve(), threading.RLock())


@lru_cache(maxsize=512)
def sqlite_sql(sql: str) -> str:
    """Row locks are PostgreSQL's: SQLite's writer lock already covers the whole file."""
    return sql.removesuffix(" FOR UPDATE")


class _SqliteConn:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self._conn.execute(sqlite_sql(sql), tuple(params))

    def lock(self, key: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE made this the only writer."""


class SqliteStore(Store):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.url = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        make_private(self.path)  # balances and device keys: owner only, whatever the umask
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        make_private(self.path, wal=True)
        self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        # An erased customer's template is overwritten with zeros, not left in free pages.
        self.conn.execute("PRAGMA secure_delete=ON")
        self._writer = _writer(self.path)
        self._wrapped = _SqliteConn(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        with self.lock, self._writer:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # still locked after the busy timeout
                raise Retryable(str(exc)) from exc
            try:
                yield self._wrapped
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def ddl_transaction(self) -> AbstractContextManager[Conn]:
        return self.transaction()

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        with self.lock:
            cursor = self.conn.execute(sql, tuple(params))
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def columns(self, table: str) -> set[str]:
        with self.lock:
            return {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}

    def reclaim(self, tables: Sequence[str]) -> None:
        """secure_delete zeroed the freed pages; TRUNCATE copies the WAL (which still holds
        the old page images) into the file and empties it."""
        with self.lock, self._writer:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
