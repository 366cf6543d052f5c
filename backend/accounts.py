"""Accounts, balances, PINs, authorization decisions and the transaction ledger of the host."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from backend.db import HostDb
from backend.settlement import place_hold, settle_row
from backend.store import Conn
from device.crypto.pinblock import PinBlockError, decipher_pin_block, pan_for_token

ACCOUNT_KEYS = ("status", "daily_limit", "offline_allowance")


def hash_pin(pin: str, salt: bytes) -> bytes:
    """scrypt: a stolen host database does not give the PINs away cheaply."""
    return hashlib.scrypt(pin.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


def vector_b64(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str
    token: str | None


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class Accounts:
    def __init__(
        self, db: HostDb, pin_key: bytes, host_id: str, hold_expiry_s: float = 86_400.0
    ) -> None:
        self._db = db
        self._hold_expiry_s = hold_expiry_s
        self._pin_key = pin_key
        self._host_id = host_id

    # -- enrolment and account changes ------------------------------------------------

    def upsert(
        self,
        conn: Conn,
        token: str,
        shard_id: str,
        account: dict[str, Any],
        *,
        balance: int | None,
        pin: str | None,
    ) -> bool:
        """Insert or update an account; True when it already existed."""
        row = conn.execute("SELECT balance FROM accounts WHERE token = ?", (token,)).fetchone()
        salt = pin_hash = None
        if pin is not None:
            salt = os.urandom(16)
            pin_hash = hash_pin(pin, salt)
        if row is None:
            conn.execute(
                "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token,
                    shard_id,
                    account["status"],
                    account["daily_limit"],
                    account["offline_allowance"],
                    balance or 0,
                    salt,
                    pin_hash,
                ),
            )
            return False
        conn.execute(
            "UPDATE accounts SET shard_id = ?, status = ?, daily_limit = ?, offline_allowance = ?,"
            " balance = COALESCE(?, balance), pin_salt = COALESCE(?, pin_salt),"
            " pin_hash = COALESCE(?, pin_hash) WHERE token = ?",
            (
                shard_id,
                account["status"],
                account["daily_limit"],
                account["offline_allowance"],
                balance,
                salt,
                pin_hash,
                token,
            ),
        )
        return True

    def account(self, token: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT * FROM accounts WHERE token = ?", [token])
        return rows[0] if rows else None

    def balance(self, token: str) -> int:
        account = self.account(token)
        return int(account["balance"]) if account else 0

    # -- authorization ----------------------------------------------------------------

    def authorize(
        self, device_id: str, tx_id: str, amount: int, candidates: Sequence[dict[str, Any]]
    ) -> Decision:
        """Idempotent by tx id: a repeated request gets the first decision. An approval is a
        hold on the balance, not a charge: the terminal's row settles it (backend/settlement.py)."""
        now = time.time()
        with self._db.transaction() as conn:
            conn.lock(tx_id)
            earlier = conn.execute(
                "SELECT decision, reason, token FROM authorizations WHERE tx_id = ?", (tx_id,)
            ).fetchone()
            if earlier is not None:
                return Decision(earlier[0] == "approved", earlier[1], earlier[2])
            decision = self._decide(conn, amount, candidates, _day(now))
            conn.execute(
                "INSERT INTO authorizations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tx_id,
                    device_id,
                    decision.token,
                    amount,
                    "approved" if decision.approved else "declined",
                    decision.reason,
                    _day(now),
                    now,
                    self._host_id,
                ),
            )
            if decision.approved and decision.token is not None:
                place_hold(conn, tx_id, decision.token, amount, now + self._hold_expiry_s)
        return decision

    def _decide(
        self,
        conn: Conn,
        amount: int,
        candidates: Sequence[dict[str, Any]],
        day: str,
    ) -> Decision:
        with_pin = [c for c in candidates if "pin_block" in c]
        if with_pin:
            chosen = next((c["token"] for c in with_pin if self._pin_ok(conn, c)), None)
            if chosen is None:
                return Decision(False, "wrong_pin", None)
        elif len(candidates) == 1:
            chosen = candidates[0]["token"]
        else:
            return Decision(False, "pin_required", None)
        row = conn.execute(
            "SELECT status, daily_limit, balance FROM accounts WHERE token = ? FOR UPDATE",
            (chosen,),
        ).fetchone()
        if row is None:
            return Decision(False, "unknown_account", chosen)
        status, daily_limit, balance = row
        if status != "active":
            return Decision(False, status, chosen)
        spent = conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM authorizations"
            " WHERE token = ? AND day = ? AND decision = 'approved'",
            (chosen, day),
        ).fetchone()[0]
        if spent + amount > daily_limit:
            return Decision(False, "daily_limit", chosen)
        if balance < amount:
            return Decision(False, "insufficient_funds", chosen)
        return Decision(True, "ok", chosen)

    def _pin_ok(self, conn: Conn, candidate: dict[str, Any]) -> bool:
        token = candidate["token"]
        row = conn.execute(
            "SELECT pin_salt, pin_hash FROM accounts WHERE token = ?", (token,)
        ).fetchone()
        if row is None or row[0] is None:
            return False
        try:
            pin = decipher_pin_block(
                self._pin_key, bytes.fromhex(candidate["pin_block"]), pan_for_token(token)
            )
        except (PinBlockError, ValueError):
            return False
        return hmac.compare_digest(hash_pin(pin, row[0]), row[1])

    # -- ledger sync ------------------------------------------------------------------

    def record_tx(
        self, device_id: str, tx: dict[str, Any], status: str, signature_ok: bool | None
    ) -> tuple[str, str, str]:
        """(result, reason, status held): result recorded | duplicate | rejected.
        De-duplicated by tx id and status; a recorded row settles the money by the one rule
        (backend/settlement.py): approved is charged once, declined and voided are not. A
        rejected row (bad signature, a status it did not sign) moves no money."""
        tx_id = tx.get("id") or tx.get("tx_id")
        result, reason = "recorded", ""
        if signature_ok is False:
            result, reason = "rejected", "bad_signature"
        elif not _status_signed(tx.get("status", status), status):
            result, reason = "rejected", "status_not_signed"
        amount, token = int(tx.get("amount", 0)), tx.get("token")
        with self._db.transaction() as conn:
            conn.lock(tx_id)
            known = conn.execute(
                "SELECT status, result FROM transactions WHERE tx_id = ?", (tx_id,)
            ).fetchone()
            if known is not None:
                held_status, held_result = known
                if not (status == "voided" and held_status == "approved" and result == "recorded"):
                    return "duplicate", "", held_status
                conn.execute(
                    "UPDATE transactions SET status = 'voided', body = ?, received_at = ? "
                    "WHERE tx_id = ?",
                    (json.dumps(tx, sort_keys=True), time.time(), tx_id),
                )
                if held_result == "recorded":
                    settle_row(conn, tx_id, token, amount, "voided")
                return "recorded", "", "voided"
            conn.execute(
                "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tx_id,
                    device_id,
                    token,
                    amount,
                    status,
                    result,
                    json.dumps(tx, sort_keys=True),
                    time.time(),
                    self._host_id,
                ),
            )
            if result == "recorded":
                settle_row(conn, tx_id, token, amount, status)
        return result, reason, status

    def transactions(self) -> list[dict[str, Any]]:
        return self._db.query("SELECT * FROM transactions ORDER BY received_at")


def _status_signed(signed: str, claimed: str) -> bool:
    """The status the terminal claims is the one it signed; a pending record that ended
    declined (the terminal restarted mid-session) moves no money, so it passes."""
    return signed == claimed or (signed == "pending" and claimed == "declined")
