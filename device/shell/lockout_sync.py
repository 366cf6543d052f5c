"""The session's wrong-PIN lockouts (monotonic time) to and from the store (wall time)."""

from __future__ import annotations

from collections.abc import Mapping

from device.clock import Clock
from device.core.policy import PinLockout
from device.store.db import StoreDatabase
from device.store.pin_lockouts import StoredLockouts, load_lockouts, save_lockouts


def to_stored(lockouts: Mapping[str, PinLockout], clock: Clock) -> StoredLockouts:
    offset = clock.time() - clock.monotonic()
    return {
        token: (entry.failures, entry.locked_until + offset if entry.locked_until else 0.0)
        for token, entry in lockouts.items()
    }


def from_stored(stored: StoredLockouts, clock: Clock) -> dict[str, PinLockout]:
    offset = clock.time() - clock.monotonic()
    return {
        token: PinLockout(failures, until - offset if until else 0.0)
        for token, (failures, until) in stored.items()
    }


class LockoutKeeper:
    """Loads the lockouts at start and writes them whenever the session changed them."""

    def __init__(self, database: StoreDatabase, clock: Clock) -> None:
        self._database, self._clock = database, clock
        self.loaded = from_stored(load_lockouts(database), clock)
        self._saved: dict[str, PinLockout] = dict(self.loaded)

    def save_if_changed(self, lockouts: Mapping[str, PinLockout]) -> bool:
        if dict(lockouts) == self._saved:
            return False
        save_lockouts(self._database, to_stored(lockouts, self._clock))
        self._saved = dict(lockouts)
        return True
