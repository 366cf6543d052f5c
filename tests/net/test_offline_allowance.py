"""The offline allowance, counted the same at the terminal and at the host: a terminal that
is offline twice in one day, with the host restating the customer's account in between,
never approves an offline payment the host then refuses (real mosquitto, host, terminal)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from device.crypto.signing import sign_document
from tests.conftest import Broker
from tests.net.conftest import (
    SHARD,
    BackendKeys,
    Terminal,
    make_host,
    make_terminal,
    pending_document,
    unit_vector,
)
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt

ALLOWANCE = 1000  # a day, per terminal; each offline row at most 500 (the floor limit)


def _today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def _pay_offline(terminal: Terminal, amount: int) -> str | None:
    """What the session does offline: the payment only when the allowance left covers it
    (device.core.policy), then the row settled as an offline approval."""
    if terminal.store.ledger.offline_remaining("tok-alice", _today()) < amount:
        return None
    document = pending_document("tok-alice", amount)
    tx_id = document["id"]
    ledger = terminal.store.ledger
    ledger.write_pending(document)
    settled = ledger.settle(
        tx_id,
        "approved",
        ["approved_offline"],
        token="tok-alice",
        offline=True,
        sign=lambda doc: sign_document(doc, terminal.signing_key),
    )
    assert settled is not None and not settled.allowance_short
    terminal.net.tx_written()
    return tx_id


def test_offline_twice_in_a_day_the_host_accepts_every_offline_row(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.register(host)
    try:
        terminal.net.start()
        assert wait_until(lambda: terminal.net.shard_sync.version == 1)
        host.enrol("tok-alice", unit_vector(1), shard_id=SHARD, offline_allowance=ALLOWANCE)
        assert wait_until(lambda: terminal.net.shard_sync.version == 2)

        broker.stop()  # the morning's outage
        assert wait_until(lambda: not terminal.net.link.connected)
        morning = [_pay_offline(terminal, 300) for _ in range(2)]  # 600 of the 1000
        assert None not in morning
        broker.start()
        assert wait_until(lambda: terminal.store.ledger.depth() == 0), "morning row not acked"

        # the host restates the account (an operator suspends and reactivates it)
        host.change("tok-alice", "suspend")
        host.change("tok-alice", "reactivate")
        assert wait_until(lambda: terminal.net.shard_sync.version == 4)
        assert terminal.store.ledger.offline_remaining("tok-alice", _today()) == ALLOWANCE - 600

        broker.stop()  # the evening's outage, the same UTC day
        assert wait_until(lambda: not terminal.net.link.connected)
        assert _pay_offline(terminal, 500) is None  # more than is left: no offline sale
        evening = _pay_offline(terminal, 400)
        assert evening is not None
        broker.start()
        assert wait_until(lambda: terminal.store.ledger.depth() == 0), "evening row not acked"

        recorded = {t["tx_id"]: t["result"] for t in host.accounts.transactions()}
        assert recorded == {tx_id: "recorded" for tx_id in [*morning, evening]}
        refused = host.db.query("SELECT tx_id, reason FROM refused_rows")
        assert refused == []
    finally:
        terminal.stop()
        host.stop()
