"""The host's one settlement rule (docs/payment.md, "Settlement").

The terminal's signed ledger row is the record of what happened at the gate; the host's
money follows it and nothing else:

- an online approval puts a **hold** on the amount (it leaves the available balance, but it
  is not a charge) that expires after `hold_expiry_s` into a refund when no row comes;
- a row **approved** charges the amount exactly once (the hold, if any, becomes the charge);
- a row **declined** or **voided** charges nothing: a hold is released, a charge refunded;
- an authorization answered after the row arrived moves no money.

Per transaction the host keeps (held, charged); every event sets the target pair and the
balance moves by the difference, so a repeat, a reordering or a late answer cannot move
money twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.store import Conn


@dataclass(frozen=True)
class Settled:
    tx_id: str
    token: str | None
    held: int
    charged: int
    row_status: str | None


def _move(conn: Conn, token: str | None, amount: int) -> None:
    """Take `amount` from the token's available balance (negative: give it back)."""
    if token is not None and amount:
        conn.execute("UPDATE accounts SET balance = balance - ? WHERE token = ?", (amount, token))


def _set(
    conn: Conn,
    tx_id: str,
    token: str | None,
    amount: int,
    *,
    held: int,
    charged: int,
    hold_expires_at: float | None,
    row_status: str | None,
) -> None:
    old = conn.execute(
        "SELECT token, held, charged FROM settlements WHERE tx_id = ? FOR UPDATE", (tx_id,)
    ).fetchone()
    # The balance moves by the difference: a hold that becomes its charge moves nothing.
    moves: dict[str | None, int] = {}
    if old is not None:
        moves[old[0]] = -(old[1] + old[2])
    moves[token] = moves.get(token, 0) + held + charged
    for who, difference in moves.items():
        _move(conn, who, difference)
    conn.execute(
        "INSERT INTO settlements VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tx_id) DO UPDATE SET"
        " token = excluded.token, amount = excluded.amount, held = excluded.held,"
        " charged = excluded.charged, hold_expires_at = excluded.hold_expires_at,"
        " row_status = excluded.row_status",
        (tx_id, token, amount, held, charged, hold_expires_at, row_status),
    )


def place_hold(conn: Conn, tx_id: str, token: str, amount: int, expires_at: float) -> bool:
    """An online approval's hold; False (nothing moves) once anything is known of the tx:
    the settlement is inserted only where none is, and only an inserted one moves money."""
    inserted = conn.execute(
        "INSERT INTO settlements VALUES (?, ?, ?, ?, 0, ?, NULL) ON CONFLICT(tx_id) DO NOTHING"
        " RETURNING tx_id",
        (tx_id, token, amount, amount, expires_at),
    ).fetchall()
    if not inserted:
        return False
    _move(conn, token, amount)
    return True


def settle_row(conn: Conn, tx_id: str, token: str | None, amount: int, status: str) -> None:
    """The terminal's signed row decides: approved is charged once, anything else is not."""
    charged = amount if status == "approved" else 0
    _set(
        conn,
        tx_id,
        token,
        amount,
        held=0,
        charged=charged,
        hold_expires_at=None,
        row_status=status,
    )


def expire_holds(conn: Conn, now: float) -> list[str]:
    """Holds whose row never came in time go back to the customer."""
    rows = conn.execute(
        "SELECT tx_id, token, amount FROM settlements"
        " WHERE held > 0 AND row_status IS NULL AND hold_expires_at <= ? FOR UPDATE",
        (now,),
    ).fetchall()
    for tx_id, token, amount in rows:
        _set(
            conn,
            tx_id,
            token,
            amount,
            held=0,
            charged=0,
            hold_expires_at=None,
            row_status=None,
        )
    return [row[0] for row in rows]


def settlement(conn: Conn, tx_id: str) -> Settled | None:
    row = conn.execute(
        "SELECT tx_id, token, held, charged, row_status FROM settlements WHERE tx_id = ?",
        (tx_id,),
    ).fetchone()
    return None if row is None else Settled(*row)
