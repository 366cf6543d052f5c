"""The console's own tables in the host database: operators, sessions, the audit log,
consent records, erasure requests, terminal shard acknowledgements and config versions.
Created beside the host's tables (backend/db.py) on open; nothing of the host's changes."""

from __future__ import annotations

import json
import time
from typing import Any

from backend.db import HostDb

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS operators (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        pw_salt BLOB NOT NULL,
        pw_hash BLOB NOT NULL,
        created_at REAL NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS console_sessions (
        id_hash TEXT PRIMARY KEY,
        operator TEXT NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_used REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        operator TEXT,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL,
        client TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS consents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        token TEXT NOT NULL,
        version TEXT NOT NULL,
        text_sha256 TEXT NOT NULL,
        given_at REAL NOT NULL,
        operator TEXT NOT NULL,
        withdrawn_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS erasures (
        token TEXT NOT NULL,
        shard_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        requested_at REAL NOT NULL,
        operator TEXT NOT NULL,
        PRIMARY KEY (shard_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS terminal_shard_acks (
        device_id TEXT NOT NULL,
        shard_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        first_acked_at REAL NOT NULL,
        PRIMARY KEY (device_id, shard_id, version)
    )""",
    """CREATE TABLE IF NOT EXISTS terminal_configs (
        device_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        config TEXT NOT NULL,
        sent_at REAL NOT NULL,
        operator TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'sent',
        reason TEXT,
        PRIMARY KEY (device_id, version)
    )""",
    "CREATE INDEX IF NOT EXISTS consents_token ON consents (token)",
    # Telemetry history (backend/console/history.py): every report for a day, then
    # per-minute aggregates for a month; counters are per boot, rates are derived on read.
    """CREATE TABLE IF NOT EXISTS telemetry_raw (
        device_id TEXT NOT NULL,
        ts REAL NOT NULL,
        minute INTEGER NOT NULL,
        fps REAL,
        cpu_temp_c REAL,
        outbox_depth INTEGER,
        liveness_rejections INTEGER,
        embed_p95 REAL,
        detect_p95 REAL,
        approved INTEGER,
        declined INTEGER,
        rolled INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (device_id, ts)
    )""",
    "CREATE INDEX IF NOT EXISTS telemetry_raw_rolled ON telemetry_raw (rolled, minute)",
    """CREATE TABLE IF NOT EXISTS telemetry_minute (
        device_id TEXT NOT NULL,
        minute INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        fps REAL,
        cpu_temp_c REAL,
        outbox_depth INTEGER,
        liveness_rejections INTEGER,
        embed_p95 REAL,
        detect_p95 REAL,
        approved INTEGER,
        declined INTEGER,
        PRIMARY KEY (device_id, minute)
    )""",
    """CREATE TABLE IF NOT EXISTS terminal_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        ts REAL NOT NULL,
        type TEXT NOT NULL,
        outcome TEXT,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS terminal_events_device ON terminal_events (device_id, ts)",
    # Alerts (backend/console/alerts.py): raised and cleared, and each delivery's outcome.
    """CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        raised_at REAL NOT NULL,
        cleared_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS alerts_open ON alerts (cleared_at, device_id)",
    """CREATE TABLE IF NOT EXISTS alert_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id INTEGER NOT NULL,
        event TEXT NOT NULL,
        target TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        at REAL NOT NULL
    )""",
    # Commands (backend/console/commands.py): pending until delivered, then done, failed,
    # timed out; a pending one past its time-to-live expires.
    """CREATE TABLE IF NOT EXISTS terminal_commands (
        request_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        name TEXT NOT NULL,
        operator TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        status TEXT NOT NULL,
        delivered_at REAL,
        finished_at REAL,
        detail TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS terminal_commands_device ON terminal_commands (device_id, status)",
]


class ConsoleStore:
    """Small queries over the console tables; the host's HostDb lock and transactions."""

    def __init__(self, db: HostDb) -> None:
        self.db = db
        with db.lock:
            for statement in SCHEMA:
                db.db.execute(statement)

    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        with self.db.lock:
            return list(self.db.db.query(sql, list(params)))

    def one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> None:
        with self.db.transaction() as conn:
            conn.execute(sql, tuple(params))

    def audit(
        self,
        operator: str | None,
        action: str,
        target: str | None = None,
        client: str | None = None,
        **detail: Any,
    ) -> None:
        self.execute(
            "INSERT INTO audit (ts, operator, action, target, detail, client)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), operator, action, target, json.dumps(detail, sort_keys=True), client),
        )

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))

    # -- shard acknowledgements (from the console's own subscription) ------------------

    def record_shard_ack(self, device_id: str, shard_id: str, version: int) -> None:
        self.execute(
            "INSERT OR IGNORE INTO terminal_shard_acks VALUES (?, ?, ?, ?)",
            (device_id, shard_id, version, time.time()),
        )

    def erasure_acks(self, shard_id: str, seq: int) -> list[dict[str, Any]]:
        """Per terminal of the shard, the first time it held a version at or above `seq`."""
        return self.query(
            "SELECT device_id, MIN(first_acked_at) AS acked_at, MAX(version) AS version"
            " FROM terminal_shard_acks WHERE shard_id = ? AND version >= ?"
            " GROUP BY device_id ORDER BY device_id",
            (shard_id, seq),
        )

    def shard_terminals(self, shard_id: str) -> list[str]:
        rows = self.query(
            "SELECT DISTINCT device_id FROM terminal_shard_acks WHERE shard_id = ?", (shard_id,)
        )
        return [r["device_id"] for r in rows]
