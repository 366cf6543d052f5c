"""What a customer may still spend at this terminal, read from the ledger's rows: the day's
approved amount (the daily cap), payments in the velocity window, and the offline allowance
left (counted as the host counts it)."""

from __future__ import annotations

from device.store.db import StoreDatabase


class SpendingLimits:
    """The ledger's queries for the payment rules (device.core.policy); Ledger has them."""

    database: StoreDatabase

    def spent_today(self, token: str, day: str) -> int:
        """Approved amount of `token` on `day` (YYYY-MM-DD, the UTC date of created_at)."""
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT coalesce(sum(amount), 0) FROM ledger "
                "WHERE token = ? AND day = ? AND status = 'approved'",
                [token, day],
            ).fetchone()
        return int(row[0])

    def approved_since(self, token: str, since: str) -> int:
        """Approved payments of `token` created at or after `since` (an ISO-8601 UTC time in
        the shell's created_at format): the velocity rule's count."""
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT count(*) FROM ledger "
                "WHERE token = ? AND created_at >= ? AND status = 'approved'",
                [token, since],
            ).fetchone()
        return int(row[0])

    def offline_spent(self, token: str, day: str) -> int:
        """What `token` paid offline at this terminal on `day` (YYYY-MM-DD, the UTC date of
        created_at): approved rows authorised offline, voided ones not. The host counts
        exactly these rows against the customer's offline allowance at this terminal
        (backend/tx_rules.py), so the two can never disagree on what is left."""
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT coalesce(sum(amount), 0) FROM ledger WHERE token = ? AND day = ? "
                "AND status = 'approved' AND json_extract(body, '$.authorization') = 'offline'",
                [token, day],
            ).fetchone()
        return int(row[0])

    def offline_remaining(self, token: str, day: str) -> int:
        """The offline allowance `token` has left at this terminal on `day` (0 for a
        customer the shard does not hold, or one not active)."""
        allowance = self._offline_allowance(token)
        return 0 if allowance is None else max(0, allowance - self.offline_spent(token, day))

    def _offline_allowance(self, token: str) -> int | None:
        with self.database.lock:
            row = self.database.db.execute(
                "SELECT offline_allowance FROM accounts WHERE token = ? AND status = 'active'",
                [token],
            ).fetchone()
        return None if row is None else int(row[0])
