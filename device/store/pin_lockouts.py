"""Wrong-PIN lockouts on this terminal, kept in the database so that a restart or a power
cycle does not reset a user's count. Times are wall-clock epoch seconds here; the session
works in monotonic time, and the shell converts (device/shell/lockout_sync.py)."""

from __future__ import annotations

from collections.abc import Mapping

from device.store.db import StoreDatabase

# token -> (wrong PINs in a row, locked until: epoch seconds, 0 when not locked)
StoredLockouts = dict[str, tuple[int, float]]


def load_lockouts(database: StoreDatabase) -> StoredLockouts:
    with database.lock:
        rows = database.db.execute(
            "SELECT token, failures, locked_until FROM pin_lockouts"
        ).fetchall()
    return {token: (int(failures), float(until)) for token, failures, until in rows}


def save_lockouts(database: StoreDatabase, lockouts: Mapping[str, tuple[int, float]]) -> None:
    """Replace the stored lockouts with these, in one transaction."""
    with database.transaction() as db:
        db.execute("DELETE FROM pin_lockouts")
        for token, (failures, until) in lockouts.items():
            if failures > 0:
                db.execute(
                    "INSERT INTO pin_lockouts (token, failures, locked_until) VALUES (?, ?, ?)",
                    [token, int(failures), float(until)],
                )
