"""Searched, paged lists (terminals, customers, transactions, the audit log) and their CSV
exports: one query shape each, `limit + 1` rows fetched so a page knows there is a next."""

from __future__ import annotations

import csv
import io
from typing import Any

from backend.console.store import ConsoleStore

PAGE_SIZE = 50
MAX_EXPORT = 100_000

LISTS: dict[str, dict[str, Any]] = {
    "customers": {
        "sql": "SELECT a.token, a.shard_id, a.status, a.balance, a.daily_limit,"
        " a.offline_allowance, (SELECT MAX(given_at) FROM consents c WHERE c.token = a.token"
        " AND c.withdrawn_at IS NULL) AS consent_at,"
        " (SELECT COUNT(*) FROM templates t WHERE t.token = a.token) AS has_template"
        " FROM accounts a WHERE a.token LIKE ? ORDER BY a.token",
        "params": 1,
        "columns": [
            "token", "shard_id", "status", "balance", "daily_limit", "offline_allowance",
            "consent_at", "has_template",
        ],
    },
    "transactions": {
        "sql": "SELECT tx_id, device_id, token, amount, status, result, received_at, host_id"
        " FROM transactions WHERE (tx_id LIKE ? OR device_id LIKE ? OR token LIKE ?)"
        " ORDER BY received_at DESC",
        "params": 3,
        "columns": [
            "tx_id", "device_id", "token", "amount", "status", "result", "received_at",
            "host_id",
        ],
    },
    "audit": {
        "sql": "SELECT id, ts, operator, action, target, detail, client FROM audit"
        " WHERE (operator LIKE ? OR action LIKE ? OR target LIKE ?) ORDER BY id DESC",
        "params": 3,
        "columns": ["id", "ts", "operator", "action", "target", "detail", "client"],
    },
}  # fmt: skip

TERMINAL_COLUMNS = [
    "device_id", "health", "health_reason", "site", "last_seen", "software", "model",
    "shard_version", "shard_lag", "outbox_depth", "fps", "cpu_temp_c",
]  # fmt: skip


def search(
    store: ConsoleStore, name: str, q: str = "", page: int = 1, size: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], bool]:
    """One page of a list, newest or alphabetical first, and whether another follows."""
    spec = LISTS[name]
    like = f"%{q[:128]}%"
    rows = store.query(
        f"{spec['sql']} LIMIT ? OFFSET ?",
        [*([like] * spec["params"]), size + 1, (max(page, 1) - 1) * size],
    )
    return rows[:size], len(rows) > size


def page_number(raw: str | None) -> int:
    return max(1, min(int(raw), 100_000)) if raw and raw.isdigit() else 1


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """RFC 4180 text; a cell a spreadsheet would run as a formula is quoted with a '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            text = "" if value is None else str(value)
            if text[:1] in ("=", "+", "-", "@") and not _number(text):
                text = "'" + text
            cells.append(text)
        writer.writerow(cells)
    return out.getvalue()


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export(store: ConsoleStore, name: str, q: str = "") -> str:
    rows, _ = search(store, name, q, 1, MAX_EXPORT)
    return to_csv(rows, LISTS[name]["columns"])
