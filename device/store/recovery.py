"""Restoring a lost ledger from the host's signed copy (`blinkpay db recover`).

The damaged database and its anchor are moved aside (kept as evidence, never deleted), a new
store is made with a new id, and every transaction the host holds for this terminal is
written back with the status the host settled, already acknowledged. What the terminal had
not synced when the loss happened is not in the host's copy: the command says so, and the
host's holds for those authorizations expire into refunds (docs/reliability.md).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from device.store.ledger import Ledger, LedgerError

FINAL = ("approved", "declined", "voided")


def move_aside(paths: Iterable[Path]) -> list[Path]:
    """`name` -> `name.damaged-<epoch>` for each file that exists; the new names."""
    stamp = int(time.time())
    moved = []
    for path in paths:
        if path.exists():
            target = path.with_name(f"{path.name}.damaged-{stamp}")
            path.rename(target)
            moved.append(target)
    return moved


def restore_rows(ledger: Ledger, rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Write the host's rows back (oldest first), acknowledged; counts by outcome."""
    counts: Counter[str] = Counter()
    for row in rows:
        status, document = row.get("status"), row.get("tx")
        if status not in FINAL or not isinstance(document, Mapping):
            counts["skipped"] += 1
            continue
        try:
            tx_id = ledger.write_pending(document)
        except LedgerError as exc:
            counts[f"skipped_{exc.reason}"] += 1
            continue
        reasons = [str(r) for r in document.get("reasons", [])]
        ledger.set_status(tx_id, "declined" if status == "declined" else "approved", reasons)
        if status == "voided":
            ledger.void(tx_id, reasons, dict(document))
        ledger.mark_acked(tx_id)
        counts[status] += 1
    return dict(counts)
