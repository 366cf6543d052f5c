"""The host's PIN try counter, per customer and across terminals, like a card issuer's:
`pin_max_tries` wrong PINs in a row lock the customer's PIN (every terminal's request with
a PIN for them is then declined `pin_locked`, the right PIN included); a right PIN resets
the count; an operator unlocks with `blinkpay-host account unlock TOKEN` (audited)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from backend.store import Conn

if TYPE_CHECKING:
    from backend.db import HostDb


def locked(conn: Conn, token: str) -> bool:
    row = conn.execute("SELECT locked_at FROM pin_tries WHERE token = ?", (token,)).fetchone()
    return row is not None and row[0] is not None


def record_failure(conn: Conn, token: str, max_tries: int, now: float) -> bool:
    """One more wrong PIN for `token`; True when this one locks it."""
    row = conn.execute("SELECT failures FROM pin_tries WHERE token = ?", (token,)).fetchone()
    failures = (0 if row is None else int(row[0])) + 1
    locked_at = now if failures >= max_tries else None
    if row is None:
        conn.execute(
            "INSERT INTO pin_tries (token, failures, last_failure_at, locked_at)"
            " VALUES (?, ?, ?, ?)",
            (token, failures, now, locked_at),
        )
    else:
        conn.execute(
            "UPDATE pin_tries SET failures = ?, last_failure_at = ?,"
            " locked_at = COALESCE(locked_at, ?) WHERE token = ?",
            (failures, now, locked_at, token),
        )
    return locked_at is not None


def reset(conn: Conn, token: str) -> None:
    """The right PIN: the count starts again (a locked PIN is never reset this way)."""
    conn.execute("DELETE FROM pin_tries WHERE token = ? AND locked_at IS NULL", (token,))


def unlock(db: HostDb, token: str, operator: str) -> dict[str, Any]:
    """The operator's unlock: the count goes, the unlock is recorded with who did it."""
    now = time.time()
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM accounts WHERE token = ?", (token,)).fetchone() is None:
            return {"token": token, "unlocked": False, "reason": "unknown_account"}
        row = conn.execute(
            "SELECT failures, locked_at FROM pin_tries WHERE token = ?", (token,)
        ).fetchone()
        failures = 0 if row is None else int(row[0])
        was_locked = row is not None and row[1] is not None
        conn.execute("DELETE FROM pin_tries WHERE token = ?", (token,))
        conn.execute(
            "INSERT INTO pin_unlocks (token, unlocked_at, operator, failures) VALUES (?, ?, ?, ?)",
            (token, now, operator, failures),
        )
    return {"token": token, "unlocked": True, "was_locked": was_locked, "failures": failures}


def status(db: HostDb, token: str) -> dict[str, Any]:
    rows = db.query("SELECT failures, locked_at FROM pin_tries WHERE token = ?", [token])
    if not rows:
        return {"token": token, "failures": 0, "locked": False}
    return {
        "token": token,
        "failures": int(rows[0]["failures"]),
        "locked": rows[0]["locked_at"] is not None,
    }
