"""Whose transaction it is, and what a terminal's row may claim (docs/security.md).

A transaction id belongs to the terminal that first used it (its authorization or its
row); another terminal's row or request with that id is refused and never recorded, so it
cannot block the genuine one. A new `approved` row is charged only when it is backed by
this terminal's own online approval (same customer, at most the approved amount) or, for an
offline approval, when the customer belongs to the terminal's shard, the amount is within
the offline floor limit and the customer's offline allowance at that terminal that day.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.store import Conn


@dataclass(frozen=True)
class Owner:
    """Who holds a tx id at the host: the device of its row, and of its authorization."""

    row_device: str | None
    auth_device: str | None
    auth_decision: str | None
    auth_token: str | None
    auth_amount: int | None

    def foreign(self, device_id: str) -> bool:
        return any(d is not None and d != device_id for d in (self.row_device, self.auth_device))


def owner(conn: Conn, tx_id: str) -> Owner:
    row = conn.execute("SELECT device_id FROM transactions WHERE tx_id = ?", (tx_id,)).fetchone()
    auth = conn.execute(
        "SELECT device_id, decision, token, amount FROM authorizations WHERE tx_id = ?", (tx_id,)
    ).fetchone()
    return Owner(
        None if row is None else row[0],
        *(auth if auth is not None else (None, None, None, None)),
    )


def day_of(tx: dict[str, Any]) -> str:
    """The UTC day the terminal wrote the row (its signed created_at), else today."""
    created = str(tx.get("created_at", ""))[:10]
    try:
        datetime.strptime(created, "%Y-%m-%d")
    except ValueError:
        return datetime.now(UTC).strftime("%Y-%m-%d")
    return created


def approval_problem(
    conn: Conn,
    device_id: str,
    tx: dict[str, Any],
    who: Owner,
    floor_limit: int,
) -> tuple[str | None, bool]:
    """(why a new `approved` row must be refused or None, whether it is an offline one)."""
    token, amount = tx.get("token"), int(tx.get("amount", 0))
    if token is None:
        return "no_customer", False
    if who.auth_decision == "approved" and who.auth_token == token:
        if amount > int(who.auth_amount or 0):
            return "over_authorized", False
        return None, False
    account = conn.execute(
        "SELECT a.shard_id, a.status, a.offline_allowance, d.home_shard FROM accounts a"
        " LEFT JOIN devices d ON d.device_id = ? WHERE a.token = ?",
        (device_id, token),
    ).fetchone()
    if account is None:
        return "unknown_account", True
    shard_id, status, allowance, home_shard = account
    if shard_id != home_shard:
        return "not_this_shard", True
    if status != "active":
        return status, True
    if amount > floor_limit:
        return "offline_over_floor", True
    spent = conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM offline_spend"
        " WHERE device_id = ? AND token = ? AND day = ?",
        (device_id, token, day_of(tx)),
    ).fetchone()[0]
    if spent + amount > allowance:
        return "offline_allowance", True
    return None, True


def spend_offline(conn: Conn, tx_id: str, device_id: str, tx: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO offline_spend (tx_id, device_id, token, day, amount) VALUES (?, ?, ?, ?, ?)",
        (tx_id, device_id, tx["token"], day_of(tx), int(tx.get("amount", 0))),
    )


def release_offline(conn: Conn, tx_id: str) -> None:
    """A voided offline approval gives its amount back to the allowance."""
    conn.execute("DELETE FROM offline_spend WHERE tx_id = ?", (tx_id,))


def refuse(
    conn: Conn,
    device_id: str,
    tx_id: str,
    status: str,
    reason: str,
    tx: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO refused_rows (device_id, tx_id, status, reason, body, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, tx_id, status) DO NOTHING",
        (device_id, tx_id, status, reason, json.dumps(tx, sort_keys=True), time.time()),
    )
