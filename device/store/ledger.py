"""The transaction ledger and its outbox: written durably before anything is actuated.

A row is `pending` when the payment starts, then `approved` or `declined`; decided rows
wait in the outbox (oldest first) until the host acknowledges their id. Rows are never
dropped: when the outbox is full, new payments are refused with OUTBOX_FULL instead.
The day's spending and the offline allowance per user come from its rows too
(device/store/ledger_limits.py).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from device.errors import BlinkpayError
from device.store.db import StoreDatabase
from device.store.ledger_chain import Anchor, ChainHead, read_anchor, row_link, verify, write_anchor
from device.store.ledger_limits import SpendingLimits

OUTBOX_FULL = "outbox_full"
INTERRUPTED = "interrupted"  # a pending row found at start: the session died with the process
TxStatus = Literal["pending", "approved", "declined", "voided"]
_FINAL = ("approved", "declined")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


Signer = Callable[[dict[str, Any]], str]  # a document -> the device's signature over it


@dataclass(frozen=True)
class Settlement:
    """What `Ledger.settle` stored: the row's status now, and whether an offline approval
    found the payer's offline allowance already spent (approved anyway: the gate decided)."""

    status: TxStatus
    allowance_short: bool = False


class LedgerError(BlinkpayError):
    """A ledger write was refused; `reason` is a reason code for the decision."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class LedgerRow:
    seq: int
    id: str
    created_at: str
    token: str | None
    amount: int
    currency: str
    mode: str
    status: TxStatus
    reasons: tuple[str, ...]
    body: dict[str, Any]  # the transaction document as written (signed by the device)
    acked_at: str | None

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style access, so outbox code can treat a row like the dict it was."""
        return getattr(self, key, default)


def _tx_id(tx: Mapping[str, Any]) -> str:
    tx_id = tx.get("id", tx.get("tx_id"))
    if not isinstance(tx_id, str) or not _UUID.match(tx_id):
        raise LedgerError("malformed_tx", f"id must be a lowercase UUIDv7 string, got {tx_id!r}")
    return tx_id


def _reasons(reasons: Sequence[str]) -> str:
    if isinstance(reasons, str) or not all(isinstance(r, str) for r in reasons):
        raise LedgerError("malformed_tx", "reasons must be a list of reason-code strings")
    return json.dumps(list(reasons))


class Ledger(SpendingLimits):
    def __init__(
        self, database: StoreDatabase, max_rows: int, anchor_path: Path | None = None
    ) -> None:
        self.database = database
        self.max_rows = max_rows
        self.anchor_path = anchor_path  # None: no anchor kept (tests of the ledger alone)
        # The session's thread and the sync's thread both write: one anchor write at a time,
        # and never an older count over a newer one.
        self._anchor_lock = threading.Lock()
        self._anchored_writes = -1

    def verify_chain(self) -> ChainHead:
        """At start: the chain is whole and reaches the anchor, else LedgerIntegrityError.
        A terminal that has no anchor yet (first start, an upgrade) writes one."""
        anchor = None if self.anchor_path is None else read_anchor(self.anchor_path)
        with self.database.lock:
            head = verify(self.database.db, anchor)
        if self.anchor_path is not None and (
            anchor is None or head.seq > anchor.seq or (anchor.store_id is None)
        ):
            write_anchor(self.anchor_path, Anchor(head.store_id, head.seq, head.link))
        return head

    def write_pending(self, tx: Mapping[str, Any], sign: Signer | None = None) -> str:
        """Store a new transaction as pending; durable (fsynced) when this returns.

        tx needs id (UUIDv7; `tx_id` is accepted too), created_at (ISO-8601 UTC), amount
        (minor units), currency, token (or None), mode; reasons defaults to []. The whole
        dict is kept as the document that syncs to the host. Raises LedgerError
        (OUTBOX_FULL) rather than drop anything when the outbox is full.

        sign: the device's signer; given, the document gets the row's place in the chain
        (`seq`, `prev`) and is signed with it, so the host can see a missing row.
        """
        tx_id = _tx_id(tx)
        created_at, amount, token = tx.get("created_at"), tx.get("amount"), tx.get("token")
        if not isinstance(created_at, str) or not _DAY.match(created_at[:10]):
            raise LedgerError("malformed_tx", f"created_at must be ISO-8601, got {created_at!r}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise LedgerError("malformed_tx", f"amount must be an integer >= 0, got {amount!r}")
        if token is not None and not isinstance(token, str):
            raise LedgerError("malformed_tx", "token must be a string or None")
        with self.database.transaction() as db:
            if self._depth(db) >= self.max_rows:
                raise LedgerError(
                    OUTBOX_FULL,
                    f"{self.max_rows} transactions wait for the host; payments pause until "
                    "the outbox drains",
                )
            if db.execute("SELECT 1 FROM ledger WHERE id = ?", [tx_id]).fetchone():
                raise LedgerError("duplicate_tx", f"transaction {tx_id} is already in the ledger")
            seq, prev = self._chain_head(db)
            seq += 1
            document = dict(tx)
            if sign is not None:
                document.update(seq=seq, prev=prev)
                document.pop("signature", None)
                document["signature"] = sign(document)
            try:
                body = json.dumps(document, sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise LedgerError(
                    "malformed_tx", f"transaction is not JSON-serialisable: {exc}"
                ) from None
            currency, mode = str(tx.get("currency", "")), str(tx.get("mode", ""))
            link = row_link(prev, seq, tx_id, created_at, amount, currency, mode)
            db.execute(
                "INSERT INTO ledger (seq, id, created_at, day, token, amount, currency, mode, "
                "status, reasons, body, link) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                [
                    seq,
                    tx_id,
                    created_at,
                    created_at[:10],
                    token,
                    amount,
                    currency,
                    mode,
                    _reasons(tx.get("reasons", tx.get("reason_codes", []))),
                    body,
                    link,
                ],
            )
            anchor = self._count_write(db)
        self._anchor(anchor)
        return tx_id

    def set_status(
        self,
        tx_id: str,
        status: TxStatus,
        reasons: Sequence[str] = (),
        *,
        token: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> bool:
        """Decide a pending transaction (durable on return). False if it is not pending.

        token: the payer when the host picked one among candidates. body: the final
        document (re-signed by the shell) that replaces the pending one for sync.
        """
        if status not in _FINAL:
            raise LedgerError("malformed_tx", f"status must be approved or declined: {status!r}")
        sets = [f"status = ?, reasons = ?, updated_at = {_NOW}"]
        params: list[Any] = [status, _reasons(reasons)]
        if token is not None:
            sets.append("token = ?")
            params.append(token)
        if body is not None:
            if _tx_id(body) != tx_id:
                raise LedgerError("malformed_tx", "the final document has another id")
            sets.append("body = ?")
            params.append(json.dumps(dict(body), sort_keys=True))
        with self.database.transaction() as db:
            cursor = db.execute(
                f"UPDATE ledger SET {', '.join(sets)} WHERE id = ? AND status = 'pending'",
                [*params, tx_id],
            )
            anchor = self._count_write(db) if cursor.rowcount == 1 else None
        self._anchor(anchor)
        return anchor is not None

    def void(self, tx_id: str, reasons: Sequence[str], body: Mapping[str, Any]) -> bool:
        """An approved payment that was not delivered (nobody passed the gate, the vend
        failed): status voided, the final document replaced, and the row unacknowledged
        again so the host learns of it (and refunds) at least once. False if the
        transaction is not approved."""
        if _tx_id(body) != tx_id:
            raise LedgerError("malformed_tx", "the void document has another id")
        with self.database.transaction() as db:
            cursor = db.execute(
                "UPDATE ledger SET status = 'voided', reasons = ?, body = ?, acked_at = NULL, "
                f"updated_at = {_NOW} WHERE id = ? AND status = 'approved'",
                [_reasons(reasons), json.dumps(dict(body), sort_keys=True), tx_id],
            )
            anchor = self._count_write(db) if cursor.rowcount == 1 else None
        self._anchor(anchor)
        return anchor is not None

    def record(
        self,
        document: Mapping[str, Any],
        status: TxStatus,
        reasons: Sequence[str],
        sign: Signer | None = None,
    ) -> str:
        """A new transaction: pending, or decided at once when the session refused it."""
        tx_id = self.write_pending(document, sign)
        if status != "pending":
            self.set_status(tx_id, status, reasons)
        return tx_id

    def settle(
        self,
        tx_id: str,
        status: TxStatus,
        reasons: Sequence[str],
        *,
        token: str | None,
        offline: bool,
        sign: Signer,
    ) -> Settlement | None:
        """Decide (or void) a row with a re-signed final document, so the status the host
        records is covered by the device's signature, not only the pending record.

        The rules: a void of an approved payment keeps the row, marked voided, and syncs it
        again (the host refunds it once; an offline approval gives its allowance back); a
        void of a payment never approved is a decline (there is nothing to refund); an
        offline approval spends the payer's offline allowance. None: no such transaction.
        """
        row = self.get(tx_id)
        if row is None:
            return None
        final = {k: v for k, v in row.body.items() if k != "signature"}
        if status == "voided" and row.status == "approved":
            final.update(status="voided", reasons=[*row.reasons, *reasons])
            final["signature"] = sign(final)
            self.void(tx_id, final["reasons"], final)
            return Settlement("voided")  # an offline one's amount is no longer spent
        stored: TxStatus = "declined" if status == "voided" else status
        final.update(status=stored, reasons=list(reasons))
        if token is not None:
            final["token"] = token
        if stored == "approved":
            final["authorization"] = "offline" if offline else "online"
        final["signature"] = sign(final)
        self.set_status(tx_id, stored, reasons, token=token, body=final)
        payer = token or row.token
        if offline and stored == "approved" and payer is not None:
            # this row now counts in offline_spent: past the allowance, it was short
            allowance = self._offline_allowance(payer)
            spent = self.offline_spent(payer, row.created_at[:10])
            return Settlement(stored, allowance is None or spent > allowance)
        return Settlement(stored)

    def recover_interrupted(self) -> list[str]:
        """At start: pending rows belong to sessions that died; decline them so they sync."""
        with self.database.transaction() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM ledger WHERE status = 'pending'")]
            db.execute(
                f"UPDATE ledger SET status = 'declined', reasons = ?, updated_at = {_NOW} "
                "WHERE status = 'pending'",
                [json.dumps([INTERRUPTED])],
            )
            anchor = self._count_write(db) if ids else None
        self._anchor(anchor)
        return ids

    def pending_sync(self, limit: int = 100) -> list[LedgerRow]:
        """Decided rows the host has not acknowledged, oldest first."""
        with self.database.lock:
            rows = self.database.db.execute(
                "SELECT seq, id, created_at, token, amount, currency, mode, status, reasons, "
                "body, acked_at FROM ledger WHERE acked_at IS NULL AND status != 'pending' "
                "ORDER BY seq LIMIT ?",
                [max(0, int(limit))],
            ).fetchall()
        return [self._row(r) for r in rows]

    def get(self, tx_id: str) -> LedgerRow | None:
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT seq, id, created_at, token, amount, currency, mode, status, reasons, "
                "body, acked_at FROM ledger WHERE id = ?",
                [tx_id],
            ).fetchone()
        return self._row(row) if row else None

    @staticmethod
    def _row(row: Sequence[Any]) -> LedgerRow:
        values = list(row)
        values[8] = tuple(json.loads(values[8]))
        values[9] = json.loads(values[9])
        return LedgerRow(*values)

    def mark_acked(self, tx_id: str, status: str | None = None) -> bool:
        """The host has the transaction. False for unknown, pending or already acked ids,
        and when the host says which status it recorded and that is no longer ours (the
        ack of the approval arriving after the payment was voided)."""
        match_status = "" if status is None else " AND status = ?"
        with self.database.transaction() as db:
            cursor = db.execute(
                f"UPDATE ledger SET acked_at = {_NOW} "
                f"WHERE id = ? AND acked_at IS NULL AND status != 'pending'{match_status}",
                [tx_id] if status is None else [tx_id, status],
            )
            anchor = self._count_write(db) if cursor.rowcount == 1 else None
        self._anchor(anchor)
        return anchor is not None

    @staticmethod
    def _depth(db: Any) -> int:
        return int(db.execute("SELECT count(*) FROM ledger WHERE acked_at IS NULL").fetchone()[0])

    def depth(self) -> int:
        """Transactions not yet acknowledged by the host (pending ones included)."""
        with self.database.lock:
            return self._depth(self.database.db)

    def prune_acked(self, before_day: str) -> int:
        """Forget acknowledged rows older than before_day (kept until then for daily caps):
        only the oldest run of such rows, so the chain keeps one unbroken stretch whose base
        (the last forgotten row's seq and link) moves forward."""
        with self.database.transaction() as db:
            keep = db.execute(
                "SELECT MIN(seq) FROM ledger WHERE acked_at IS NULL OR day >= ?", [before_day]
            ).fetchone()[0]
            bound = "" if keep is None else " WHERE seq < ?"
            last = db.execute(
                f"SELECT seq, link FROM ledger{bound} ORDER BY seq DESC LIMIT 1",
                [] if keep is None else [keep],
            ).fetchone()
            if last is None:
                return 0
            cursor = db.execute("DELETE FROM ledger WHERE seq <= ?", [last[0]])
            db.execute("UPDATE ledger_meta SET base_seq = ?, base_link = ?", list(last))
            anchor = self._count_write(db)
        self._anchor(anchor)
        return cursor.rowcount

    def _count_write(self, db: Any) -> Anchor:
        """Inside a write's transaction: one more committed write; the anchor it makes."""
        db.execute("UPDATE ledger_meta SET writes = writes + 1")
        store_id, writes = db.execute("SELECT store_id, writes FROM ledger_meta").fetchone()
        seq, link = self._chain_head(db)
        return Anchor(store_id, seq, link, writes)

    def _anchor(self, anchor: Anchor | None) -> None:
        """After the commit: the anchor outside the database follows it."""
        if anchor is None or self.anchor_path is None:
            return
        with self._anchor_lock:
            if anchor.writes > self._anchored_writes:
                write_anchor(self.anchor_path, anchor)
                self._anchored_writes = anchor.writes

    @staticmethod
    def _chain_head(db: Any) -> tuple[int, str]:
        """(seq, link) of the last row, or of the chain's base when no row is kept."""
        row = db.execute("SELECT seq, link FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return int(row[0]), str(row[1])
        base = db.execute("SELECT base_seq, base_link FROM ledger_meta").fetchone()
        return int(base[0]), str(base[1])
