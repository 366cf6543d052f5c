"""Wrong-PIN lockouts survive a restart: a power cycle must not buy a guesser more tries."""

from __future__ import annotations

from pathlib import Path

from device.clock import FakeClock
from device.config import Config
from device.core import policy
from device.shell.lockout_sync import LockoutKeeper, from_stored, to_stored
from device.store.keys import provision_keys
from device.store.terminal_store import open_store, store_key_paths


def test_monotonic_lockouts_round_trip_through_wall_time() -> None:
    clock = FakeClock(start=500.0, wall_start=1_790_000_000.0)
    lockouts = {"a": policy.PinLockout(3, 560.0), "b": policy.PinLockout(1, 0.0)}
    stored = to_stored(lockouts, clock)
    assert stored == {"a": (3, 1_790_000_060.0), "b": (1, 0.0)}
    assert from_stored(stored, clock) == lockouts


def test_a_lockout_outlives_a_restart_of_the_terminal(tmp_path: Path) -> None:
    config = Config.model_validate({"device": {"data_dir": str(tmp_path)}})
    provision_keys(store_key_paths(config.store, config.device.data_dir))
    payment = config.payment
    before = FakeClock(start=1_000.0, wall_start=1_790_000_000.0)
    store = open_store(config.store, config.device.data_dir, "v1", 4, "s1")
    keeper = LockoutKeeper(store.database, before)
    assert keeper.loaded == {}
    lockouts: dict[str, policy.PinLockout] = {}
    for _ in range(payment.pin_free_attempts):  # up to the first locking wrong PIN
        lockouts = policy.record_wrong_pin(lockouts, ["cust-1"], before.monotonic(), payment)
    assert keeper.save_if_changed(lockouts) and not keeper.save_if_changed(lockouts)
    locked = policy.locked_for(lockouts, "cust-1", before.monotonic())
    assert locked == payment.pin_lock_base_s
    store.close()

    # Ten seconds later the terminal is back: its monotonic clock restarted near zero.
    after = FakeClock(start=5.0, wall_start=1_790_000_010.0)
    store = open_store(config.store, config.device.data_dir)
    try:
        restored = LockoutKeeper(store.database, after).loaded
        assert restored["cust-1"].failures == payment.pin_free_attempts
        assert policy.locked_for(restored, "cust-1", after.monotonic()) == locked - 10.0
        # a correct PIN later clears the count, and that is stored too
        cleared = policy.record_pin_ok(restored, "cust-1")
        assert LockoutKeeper(store.database, after).save_if_changed(cleared)
        assert LockoutKeeper(store.database, after).loaded == {}
    finally:
        store.close()
