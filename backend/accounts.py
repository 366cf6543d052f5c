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

from backend import pin_tries, tx_rules
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
        self,
        db: HostDb,
        pin_key: bytes,
        host_id: str,
        hold_expiry_s: float = 86_400.0,
        *,
        pin_max_tries: int = 5,
        offline_floor_limit: int = 500,
    ) -> None:
        self.pin_max_tries = pin_max_tries
        self.offline_floor_limit = offline_floor_limit
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
        """Idempotent by tx id for the terminal that asked first; another terminal's request
        with that id is declined `duplicate` (nothing of the first answer). An approval is a
        hold on the balance, not a charge: the terminal's row settles it
        (backend/settlement.py). The PIN checks (scrypt) run outside the write lock, and
        only for a request not answered before."""
        pins: dict[str, str] = {}
        if any("pin_block" in candidate for candidate in candidates):
            rows = self._db.query(tx_rules.OWNER_SQL, (tx_id, tx_id))
            earlier = _earlier(device_id, tx_rules.owner_of(tuple(r.values()) for r in rows))
            if earlier is not None:
                return earlier
            pins = self._check_pins(device_id, candidates)
        now = time.time()
        with self._db.transaction() as conn:
            conn.lock(tx_id)
            earlier = _earlier(device_id, tx_rules.owner(conn, tx_id))
            if earlier is not None:
                return earlier
            decision = self._decide(conn, device_id, amount, candidates, pins, now)
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

    def _check_pins(self, device_id: str, candidates: Sequence[dict[str, Any]]) -> dict[str, str]:
        """token -> ok | wrong | locked | other_shard, for the candidates with a PIN block."""
        outcome: dict[str, str] = {}
        for candidate in candidates:
            if "pin_block" not in candidate:
                continue
            token = candidate["token"]
            row = _one(
                self._db,
                None,
                "SELECT a.pin_salt, a.pin_hash, a.shard_id, d.home_shard FROM accounts a"
                " LEFT JOIN devices d ON d.device_id = ? WHERE a.token = ?",
                (device_id, token),
            )
            is_locked = _one(
                self._db, None, "SELECT locked_at FROM pin_tries WHERE token = ?", (token,)
            )
            is_locked = is_locked is not None and is_locked[0] is not None
            if row is not None and row[2] != row[3]:
                outcome[token] = "other_shard"
            elif is_locked:
                outcome[token] = "locked"
            else:
                outcome[token] = "ok" if self._pin_ok(token, row, candidate) else "wrong"
        return outcome

    def _decide(
        self,
        conn: Conn,
        device_id: str,
        amount: int,
        candidates: Sequence[dict[str, Any]],
        pins: dict[str, str],
        now: float,
    ) -> Decision:
        if pins:
            chosen = next((t for t, verdict in pins.items() if verdict == "ok"), None)
            if chosen is None:
                wrong = [t for t, verdict in pins.items() if verdict == "wrong"]
                for token in wrong:
                    if self._has_pin(conn, token):
                        pin_tries.record_failure(conn, token, self.pin_max_tries, now)
                if not wrong and any(v == "locked" for v in pins.values()):
                    return Decision(False, "pin_locked", None)
                return Decision(False, "wrong_pin", None)
            pin_tries.reset(conn, chosen)
        elif len(candidates) == 1:
            chosen = candidates[0]["token"]
        else:
            return Decision(False, "pin_required", None)
        # The account row locked (two payments of one customer decide one after the other)
        # with the terminal's shard in the same round trip.
        row = conn.execute(
            "SELECT status, daily_limit, balance, shard_id,"
            " (SELECT home_shard FROM devices WHERE device_id = ?)"
            " FROM accounts WHERE token = ? FOR UPDATE",
            (device_id, chosen),
        ).fetchone()
        if row is None or row[3] != row[4]:
            return Decision(False, "unknown_account", None)  # another shard's customer
        status, daily_limit, balance = row[:3]
        if status != "active":
            return Decision(False, status, chosen)
        spent = conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM authorizations"
            " WHERE token = ? AND day = ? AND decision = 'approved'",
            (chosen, _day(now)),
        ).fetchone()[0]
        if spent + amount > daily_limit:
            return Decision(False, "daily_limit", chosen)
        if balance < amount:
            return Decision(False, "insufficient_funds", chosen)
        return Decision(True, "ok", chosen)

    @staticmethod
    def _has_pin(conn: Conn, token: str) -> bool:
        row = conn.execute("SELECT pin_hash FROM accounts WHERE token = ?", (token,)).fetchone()
        return row is not None and row[0] is not None

    def _pin_ok(self, token: str, row: Sequence[Any] | None, candidate: dict[str, Any]) -> bool:
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

    def record_tx(self, device_id: str, tx: dict[str, Any], status: str) -> tuple[str, str, str]:
        """(result, reason, status held): result recorded | duplicate | rejected, for a row
        whose signature the caller has verified against `device_id`'s registered key.
        De-duplicated by tx id and status for the terminal that owns the id; a recorded row
        settles the money by the one rule (backend/settlement.py). A rejected row (another
        terminal's id, a status it did not sign, an offline approval past the rules of
        backend/tx_rules.py) moves no money, is kept in refused_rows and takes no id."""
        tx_id = str(tx.get("id") or tx.get("tx_id"))
        amount, token = int(tx.get("amount", 0)), tx.get("token")
        with self._db.transaction() as conn:
            conn.lock(tx_id)
            who = tx_rules.owner(conn, tx_id)
            reason = _row_problem(device_id, tx, status, who)
            if reason:
                tx_rules.refuse(conn, device_id, tx_id, status, reason, tx)
                return "rejected", reason, status
            if who.row_status is not None:
                held_status, held_result = who.row_status, who.row_result
                if not (status == "voided" and held_status == "approved"):
                    return "duplicate", "", held_status
                conn.execute(
                    "UPDATE transactions SET status = 'voided', body = ?, received_at = ? "
                    "WHERE tx_id = ?",
                    (json.dumps(tx, sort_keys=True), time.time(), tx_id),
                )
                if held_result == "recorded":
                    settle_row(conn, tx_id, token, amount, "voided")
                tx_rules.release_offline(conn, tx_id)
                return "recorded", "", "voided"
            if status == "approved":
                problem, offline = tx_rules.approval_problem(
                    conn, device_id, tx, who, self.offline_floor_limit
                )
                if problem:
                    tx_rules.refuse(conn, device_id, tx_id, status, problem, tx)
                    return "rejected", problem, status
                if offline:
                    tx_rules.spend_offline(conn, tx_id, device_id, tx)
            conn.execute(
                "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tx_id,
                    device_id,
                    token,
                    amount,
                    status,
                    "recorded",
                    json.dumps(tx, sort_keys=True),
                    time.time(),
                    self._host_id,
                ),
            )
            settle_row(conn, tx_id, token, amount, status)
        return "recorded", "", status

    def transactions(self) -> list[dict[str, Any]]:
        return self._db.query("SELECT * FROM transactions ORDER BY received_at")


def _row_problem(device_id: str, tx: dict[str, Any], status: str, who: tx_rules.Owner) -> str:
    if not _status_signed(tx.get("status", status), status):
        return "status_not_signed"
    if who.foreign(device_id):
        return "foreign_tx"  # another terminal's id: never recorded, never blocks it
    return ""


def _earlier(device_id: str, who: tx_rules.Owner) -> Decision | None:
    """The decision already made for this tx id (or `duplicate`: another terminal's id)."""
    if who.auth_device is None:
        if who.row_device is not None and who.row_device != device_id:
            return Decision(False, "duplicate", None)
        return None
    if who.auth_device != device_id:  # another terminal's transaction id
        return Decision(False, "duplicate", None)
    return Decision(who.auth_decision == "approved", who.auth_reason or "", who.auth_token)


def _status_signed(signed: str, claimed: str) -> bool:
    """The status the terminal claims is the one it signed; a pending record that ended
    declined (the terminal restarted mid-session) moves no money, so it passes."""
    return signed == claimed or (signed == "pending" and claimed == "declined")


def _one(
    db: HostDb, conn: Conn | None, sql: str, params: tuple[Any, ...]
) -> tuple[Any, ...] | None:
    """The first row as a tuple: inside `conn`'s transaction, or a read of its own."""
    if conn is not None:
        found = conn.execute(sql, params).fetchone()
        return None if found is None else tuple(found)
    rows = db.query(sql, params)
    return tuple(rows[0].values()) if rows else None
