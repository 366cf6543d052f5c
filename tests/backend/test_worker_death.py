"""A host worker that dies (docs/scaling.md, "Many workers"), with real processes: two
`blinkpay-host serve` on one store behind a real mosquitto, registered terminals speaking
the real contract (backend/bench_terminals.py). Worker 0 is frozen (SIGSTOP: the broker
keeps dealing it its share, which it never answers nor acknowledges), then SIGKILLed and
not restarted. Its broker session ends with its connection (session expiry 0 for a host),
so what it held is gone from the broker: the terminals' offline rules and row resends make
up for it, and nothing is lost or taken twice; from the kill on, the survivor gets every
request at once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from backend.bench_books import books
from backend.bench_load import PROBE, START_BALANCE, _setup, _Store, _wait_for_workers, _Workers
from backend.bench_terminals import Fleet, Outcome, Spec
from backend.config import load_host_config
from backend.db import HostDb
from device.net.local_broker import LocalBroker, mosquitto_binary

pytestmark = [pytest.mark.slow, pytest.mark.mqtt]

TERMINALS = 6


def _fleet(common: dict, devices: list, seconds: float) -> Outcome:
    spec = Spec(devices=devices, start_at=time.time() + 1.0, duration_s=seconds, **common)
    return Fleet(spec).run()


def test_a_dead_worker_leaves_the_group_at_once_and_loses_no_money(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "broker", mosquitto_binary() or "mosquitto").start()
    store = _Store("sqlite", tmp_path)
    workers = _Workers(tmp_path, {}, 0)
    try:
        setup = _setup(tmp_path, store, broker.url, TERMINALS)
        workers = _Workers(tmp_path, setup["base"], 2)
        workers.start()
        config = load_host_config(tmp_path / "host.toml")
        common = dict(host="127.0.0.1", port=broker.port, prefix=config.mqtt.prefix,
                      host_key_pem=(tmp_path / "keys" / "signing.pub.pem").read_bytes(),
                      rate=8.0, drain_s=30.0, auth_timeout_s=config.mqtt.auth_timeout_s,
                      tx_retry_s=1.0, amount=250, currency="EUR")  # fmt: skip
        fleet = setup["devices"][:TERMINALS]
        probe = Spec(devices=setup["devices"][TERMINALS:], start_at=0.0, duration_s=0, **common)
        assert probe.devices[0][0] == PROBE
        _wait_for_workers(probe, workers, 2, timeout=60.0)

        dying = workers.processes[0]
        os.kill(dying.pid, signal.SIGSTOP)  # dealt its share from now on, answers nothing

        def kill_later() -> None:
            time.sleep(3.0)
            dying.kill()  # SIGKILL, stopped or not; never restarted

        killer = threading.Thread(target=kill_later)
        killer.start()
        frozen = _fleet(common, fleet, 3.0)  # the frozen worker's share times out
        killer.join()
        dying.wait(10)
        alone = _fleet(common, fleet, 3.0)  # the survivor alone, at once
        assert workers.processes[1].poll() is None
    finally:
        workers.stop()
        broker.stop()
    db = HostDb(store.target)
    try:
        rows = {**frozen.rows, **alone.rows}
        ledger = books(db, rows, {token: START_BALANCE for _, _, token in fleet})
    finally:
        db.close()
        store.close()
    assert frozen.timeouts > 0  # the frozen worker was dealt requests it never answered
    assert frozen.row_resends > 0  # and rows, resent by the terminals until acknowledged
    assert alone.sent > 0 and alone.timeouts == 0  # nothing dealt to the dead one any more
    assert ledger["approved"] > 0 and ledger["charged"] == ledger["approved"]
    assert ledger["money_lost"] == 0 and ledger["taken_twice"] == 0
    assert ledger["holds_open"] == 0 and ledger["rows_unacknowledged"] == 0
    assert ledger["rows_not_recorded"] == 0 and ledger["books_balanced"] is True
