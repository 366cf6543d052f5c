"""A terminal stopped by SIGTERM mid-pulse: exits 0 quickly, the relay is released (read
back from the pin), the ledger keeps every row and stays consistent."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from device import app
from device.clock import SystemClock
from device.notify import Notifier
from device.shell.terminal import new_tx_id
from device.store.terminal_store import open_store

STOP_LIMIT_S = 5.0


class RecordingNotifier(Notifier):
    """What the app tells systemd, recorded (no socket)."""

    def __init__(self) -> None:
        super().__init__(env={})
        self.sent: list[dict[str, Any]] = []
        self.ready_event = threading.Event()

    def send(self, **fields: str | int) -> bool:
        self.sent.append(fields)
        if "READY" in fields:
            self.ready_event.set()
        return True


def _tx(amount: int) -> dict[str, Any]:
    return {
        "id": new_tx_id(),
        "created_at": "2026-11-23T10:00:00.000+00:00",
        "amount": amount,
        "currency": "EUR",
        "token": "cust-1",
        "mode": "turnstile",
        "reasons": [],
    }


def test_sigterm_mid_pulse_releases_relay_and_keeps_ledger(sim_terminal) -> None:
    config = sim_terminal.config
    store = open_store(config.store, config.device.data_dir)
    approved, pending = _tx(250), _tx(300)
    store.ledger.write_pending(approved)
    store.ledger.set_status(approved["id"], "approved", ["approved_online"])
    store.ledger.write_pending(pending)  # a payment in flight when the power went
    store.close()

    clock = SystemClock()
    parts = app.open_parts(config, sim=True, clock=clock)
    notifier = RecordingNotifier()
    signalled: list[float] = []

    def operator() -> None:
        if not notifier.ready_event.wait(60):
            return  # run() never got going; the test fails on the missing READY below
        parts.hardware.relay.hold_open()  # the gate is energised right now
        assert parts.hardware.relay.read_back()
        signalled.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=operator)
    thread.start()
    returncode = app.run(config, sim=True, clock=clock, notifier=notifier, parts=parts)
    stopped_after = time.monotonic() - signalled[0] if signalled else None
    thread.join()

    assert signalled, f"no READY=1: {notifier.sent}"
    assert returncode == 0
    assert stopped_after is not None and stopped_after < STOP_LIMIT_S
    assert parts.relay_energised_at_stop is False
    sim = parts.hardware.sim
    assert sim is not None
    relay = config.hardware.pins.relay
    assert sim.history(relay)[-1][1] is (not config.hardware.relay_active_high)
    assert any("STOPPING" in fields for fields in notifier.sent)

    store = open_store(config.store, config.device.data_dir)
    try:
        assert store.database.integrity_problems() == []
        kept = store.ledger.get(approved["id"])
        assert kept is not None and kept.status == "approved" and kept.amount == 250
        recovered = store.ledger.get(pending["id"])
        # the run declined the interrupted payment at start, so it syncs as such
        assert recovered is not None and recovered.status == "declined"
        assert recovered.reasons == ("interrupted",)
    finally:
        store.close()
