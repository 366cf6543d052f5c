"""The host's own SQLite: accounts and balances, templates, shard sequence, transactions,
authorizations and terminal keys. Several host processes may share one file (WAL, busy
timeout, BEGIN IMMEDIATE), which is how the shared-subscription hosts share state."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from backend.settlement import SCHEMA as SETTLEMENT_SCHEMA
from device.store.db import make_private

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


# The X25519 public key shard templates are sealed to, and the shard the operator
# registered the terminal for (recipients are chosen by this, never by what a terminal
# claims on shard/req or shard/ack).
DEVICE_COLUMNS = {"box_key_pem": "TEXT", "home_shard": "TEXT"}


class HostDb:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        make_private(self.path)  # balances and device keys: owner only, whatever the umask
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db = Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        make_private(self.path, wal=True)
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.lock = threading.RLock()
        for statement in SCHEMA:
            self.db.execute(statement)
        self._add_columns("devices", DEVICE_COLUMNS)

    def _add_columns(self, table: str, columns: dict[str, str]) -> None:
        """Columns added after a release, on a database made before it."""
        have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})").fetchall()}
        for name, kind in columns.items():
            if name not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

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

    # -- listings for the operator (no keys needed) -----------------------------------------

    def devices(self) -> list[dict[str, Any]]:
        """Every known terminal: whether its key is registered, its shard (the operator's
        choice at `device add --shard`, from then on), the shard and version it last
        reported, and its last contact."""
        with self.lock:
            rows = self.db.query(
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
        with self.lock:
            rows = self.db.query(sql + " ORDER BY a.token", params)
            return [
                {**row, "has_pin": bool(row["has_pin"]), "has_template": bool(row["has_template"])}
                for row in rows
            ]
