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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.store import Conn


@dataclass(frozen=True)
class Owner:
    """What the host holds of a tx id: its row (the device, the status held, the result)
    and its authorization (the device, the decision and why, the customer, the amount)."""

    row_device: str | None = None
    row_status: str | None = None
    row_result: str | None = None
    auth_device: str | None = None
    auth_decision: str | None = None
    auth_reason: str | None = None
    auth_token: str | None = None
    auth_amount: int | None = None

    def foreign(self, device_id: str) -> bool:
        return any(d is not None and d != device_id for d in (self.row_device, self.auth_device))


# One statement for both tables (a round trip less on PostgreSQL, for every message).
OWNER_SQL = (
    "SELECT 'row' AS kind, device_id, status AS state, result AS detail, NULL AS token,"
    " NULL AS amount FROM transactions WHERE tx_id = ?"
    " UNION ALL SELECT 'auth', device_id, decision, reason, token, amount"
    " FROM authorizations WHERE tx_id = ?"
)


def owner_of(rows: Iterable[Sequence[Any]]) -> Owner:
    """The Owner of the rows OWNER_SQL found."""
    found: dict[str, Any] = {}
    for kind, device, status, result, token, amount in rows:
        if kind == "row":
            found.update(row_device=device, row_status=status, row_result=result)
        else:
            found.update(auth_device=device, auth_decision=status, auth_reason=result,
                         auth_token=token, auth_amount=amount)  # fmt: skip
    return Owner(**found)


def owner(conn: Conn, tx_id: str) -> Owner:
    return owner_of(conn.execute(OWNER_SQL, (tx_id, tx_id)).fetchall())


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
