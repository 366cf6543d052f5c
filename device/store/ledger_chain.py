"""Ledger loss is detected, never silent: a hash chain over the rows and an anchor outside
the database.

Every ledger row carries `link = sha256(previous link, seq, id, created_at, amount, currency,
mode)`, fields that never change once written; the row's signed document carries its `seq`
and the previous link too, so the host sees gaps. After each new row the terminal writes the
chain's head (store id, last seq, last link) to an anchor file beside the database (0600,
atomic replace). At start the chain is walked and compared with the anchor: a database that
is gone, emptied, replaced, rolled back, or lost committed rows (a damaged WAL is cut at the
damage) no longer reaches the anchor, and the terminal refuses to start
(docs/reliability.md, "Ledger loss").
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.crypto.signing import write_private_file
from device.errors import BlinkpayError

GENESIS = "0" * 64
ANCHOR_FILE = "ledger.anchor"


class LedgerIntegrityError(BlinkpayError):
    """The ledger is damaged or rows are missing: the terminal must not take payments."""

    exit_code = 3  # systemd: RestartPreventExitStatus=3, a restart loop would not mend it


def row_link(
    prev: str, seq: int, tx_id: str, created_at: str, amount: int, currency: str, mode: str
) -> str:
    fields = [prev, str(seq), tx_id, created_at, str(amount), currency, mode]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """The chain's head as last written: `store_id` None means provisioned, no database yet."""

    store_id: str | None
    seq: int
    link: str
    writes: int = 0  # committed ledger writes of any kind: a lost status change shows too

    def to_json(self) -> bytes:
        data = {"store_id": self.store_id, "seq": self.seq, "link": self.link}
        data["writes"] = self.writes
        return json.dumps(data, sort_keys=True).encode() + b"\n"


def new_store_id() -> str:
    return secrets.token_hex(8)


def read_anchor(path: Path) -> Anchor | None:
    try:
        data: Any = json.loads(Path(path).read_bytes())
        anchor = Anchor(
            data["store_id"], int(data["seq"]), str(data["link"]), int(data.get("writes", 0))
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerIntegrityError(f"{path}: the ledger anchor is unreadable ({exc})") from None
    return anchor


def write_anchor(path: Path, anchor: Anchor) -> None:
    write_private_file(path, anchor.to_json(), overwrite=True)


@dataclass(frozen=True)
class ChainHead:
    store_id: str | None
    seq: int  # the last row's seq (the base seq when no row is kept)
    link: str
    rows: int
    link_at: str | None = None  # the link at the seq asked for, if the chain has it
    writes: int = 0


def walk(db: Any, at_seq: int | None = None) -> ChainHead:
    """Recompute every link from the base (what pruning left) to the last row."""
    meta = db.execute("SELECT store_id, base_seq, base_link, writes FROM ledger_meta").fetchone()
    if meta is None:
        return ChainHead(None, 0, GENESIS, 0)
    store_id, seq, link, writes = meta
    link_at = link if at_seq == seq else None
    rows = 0
    for row in db.execute(
        "SELECT seq, id, created_at, amount, currency, mode, link FROM ledger ORDER BY seq"
    ):
        expected = row_link(link, *row[:6])
        if row[0] != seq + 1 or row[6] != expected:
            raise LedgerIntegrityError(
                f"ledger chain broken at seq {row[0]} (after seq {seq}): rows are missing or "
                "were changed; see docs/reliability.md, `blinkpay db recover`"
            )
        seq, link, rows = row[0], expected, rows + 1
        if seq == at_seq:
            link_at = link
    return ChainHead(store_id, seq, link, rows, link_at, writes)


def check(head: ChainHead, anchor: Anchor | None) -> None:
    """The database's chain reaches the anchor (a crash between commit and anchor write
    leaves the database ahead by its last row, which is fine)."""
    if anchor is None or anchor.store_id is None:
        return
    if head.store_id != anchor.store_id:
        raise LedgerIntegrityError(
            "the database is not the one this terminal's ledger was written to (store id "
            f"{head.store_id} instead of {anchor.store_id}): it was replaced or emptied"
        )
    if head.seq < anchor.seq:
        raise LedgerIntegrityError(
            f"{anchor.seq - head.seq} committed ledger rows are missing (the database ends at "
            f"seq {head.seq}, the anchor says {anchor.seq})"
        )
    if head.writes < anchor.writes:
        raise LedgerIntegrityError(
            f"{anchor.writes - head.writes} committed ledger writes are missing (a damaged "
            "journal lost them): decisions the gate acted on may be gone"
        )
    if head.link_at is not None and head.link_at != anchor.link:
        raise LedgerIntegrityError(f"ledger row {anchor.seq} differs from the one anchored")


def verify(db: Any, anchor: Anchor | None) -> ChainHead:
    """Walk the chain and hold it against the anchor; LedgerIntegrityError if it fails."""
    head = walk(db, None if anchor is None else anchor.seq)
    check(head, anchor)
    return head
