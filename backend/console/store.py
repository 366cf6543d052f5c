"""The console's own tables in the host database: operators, sessions, the audit log,
consent records, erasure requests, terminal shard acknowledgements and config versions.
Made by the migration backend/store/migrations/0002_console.sql beside the host's tables,
in SQLite or PostgreSQL; nothing of the host's changes. The telemetry history, alerts and
commands (history.py, alerts.py, commands.py) are 0004_console_ops.sql."""

from __future__ import annotations

import json
import time
from typing import Any

from backend.db import HostDb


class ConsoleStore:
    """Small queries over the console tables; the host's HostDb lock and transactions."""

    def __init__(self, db: HostDb) -> None:
        self.db = db

    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        return self.db.query(sql, params)

    def one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> None:
        self.db.retry(self._execute, sql, params)

    def _execute(self, sql: str, params: tuple[Any, ...] | list[Any]) -> None:
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
            "INSERT INTO terminal_shard_acks VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
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

    def terminals_with_refused_rows(self, since: float) -> set[str]:
        """Terminals that sent a signed row the host refused (backend/tx_rules.py) since
        `since`: another terminal's sale, over the offline rules, a customer of another
        shard. Their key signed it, so the terminal is rogue or broken."""
        rows = self.query(
            "SELECT DISTINCT device_id FROM refused_rows WHERE received_at >= ?", (since,)
        )
        return {r["device_id"] for r in rows}
