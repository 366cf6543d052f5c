"""The books after `blinkpay-host bench load`: what the terminals' signed rows say against
what the host's database moved (backend/settlement.py), row by row and customer by
customer. Nothing is trusted from the workers' own counters."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from backend.db import HostDb


def books(
    db: HostDb, rows: dict[str, tuple[str, str, int, bool]], start_balance: dict[str, int]
) -> dict[str, Any]:
    """rows: tx id -> (the terminal's row status, token, amount, acknowledged by the host)."""
    settled = {
        r["tx_id"]: r
        for r in db.query("SELECT tx_id, token, amount, held, charged, row_status FROM settlements")
    }
    balances = {
        r["token"]: int(r["balance"]) for r in db.query("SELECT token, balance FROM accounts")
    }
    recorded = {r["tx_id"] for r in db.query("SELECT tx_id FROM transactions")}
    approved = charged = lost = twice = wrongly = unacked = not_recorded = 0
    owed: dict[str, int] = defaultdict(int)
    for tx_id, (status, token, amount, acked) in rows.items():
        settlement = settled.get(tx_id)
        taken = int(settlement["charged"]) if settlement else 0
        unacked += not acked
        not_recorded += tx_id not in recorded
        if status == "approved":
            approved += 1
            owed[token] += amount
            if taken == amount:
                charged += 1
            elif taken < amount:
                lost += 1  # the gate opened, the host did not charge it
            else:
                twice += 1
        elif taken:
            wrongly += 1  # charged for a row the terminal declined
    holds = [s for s in settled.values() if int(s["held"]) > 0]
    moved = {token: start - balances.get(token, 0) for token, start in start_balance.items()}
    held_by: dict[str, int] = defaultdict(int)
    for hold in holds:
        held_by[hold["token"]] += int(hold["held"])
    # A customer's balance fell by more than their approved rows and open holds: taken twice.
    overdrawn = sum(1 for t, m in moved.items() if m > owed[t] + held_by[t])
    underdrawn = sum(1 for t, m in moved.items() if m < owed[t])
    return {
        "approved": approved,
        "charged": charged,
        "rows": len(rows),
        "rows_settled": sum(1 for s in settled.values() if s["row_status"] is not None),
        "rows_unacknowledged": unacked,
        "rows_not_recorded": not_recorded,
        "money_lost": lost + underdrawn,
        "taken_twice": twice + wrongly + overdrawn,
        "holds_open": len(holds),
        "books_balanced": sum(moved.values())
        == sum(int(s["charged"]) + int(s["held"]) for s in settled.values()),
    }
