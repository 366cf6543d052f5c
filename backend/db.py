"""The host's own SQLite: accounts and balances, templates, shard sequence, transactions,
authorizations and terminal keys. Several host processes may share one file (WAL, busy
timeout, BEGIN IMMEDIATE), which is how the shared-subscription hosts share state."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from backend.settlement import SCHEMA as SETTLEMENT_SCHEMA

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS accounts (
        token TEXT PRIMARY KEY,
        shard_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
        daily_limit INTEGER NOT NULL,
        offline_allowance INTEGER NOT NULL,
        balance INTEGER NOT NULL,
        pin_salt BLOB,
        pin_hash BLOB
    )""",
    """CREATE TABLE IF NOT EXISTS templates (
        token TEXT PRIMARY KEY REFERENCES accounts(token) ON DELETE CASCADE,
        embedder_version TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS shards (
        shard_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        embedder_version TEXT NOT NULL,
        dim INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS transactions (
        tx_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        token TEXT,
        amount INTEGER NOT NULL,
        status TEXT NOT NULL,
        result TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL,
        host_id TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS authorizations (
        tx_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        token TEXT,
        amount INTEGER NOT NULL,
        decision TEXT NOT NULL,
        reason TEXT NOT NULL,
        day TEXT NOT NULL,
        decided_at REAL NOT NULL,
        host_id TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS devices (
        device_id TEXT PRIMARY KEY,
        public_key_pem TEXT,
        shard_id TEXT,
        shard_version INTEGER,
        last_seen REAL
    )""",
    "CREATE INDEX IF NOT EXISTS auth_token_day ON authorizations (token, day)",
    SETTLEMENT_SCHEMA,
]


class HostDb:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db = Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.lock = threading.RLock()
        for statement in SCHEMA:
            self.db.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: one writer at a time across threads and host processes."""
        with self.lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.db.close()
