"""Refusals that must hold on the wire: NaN / inf / string / bool timestamps, a signed
command replayed after a restart, a 100k-digit integer and deep nesting (counted as
malformed, not handler errors), and refused-message log lines at a bounded rate."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import pytest

from device.crypto.signing import canonical_json, key_id, sign_bytes
from device.net import schemas
from device.net.refusals import RefusalLog
from device.net.remote_control import CommandOutcome, issued_at
from device.net.schemas import PayloadRejected
from device.net.service import NetService
from device.net.shard_sync import TemplateShardPort
from device.net.topics import DeviceTopics
from device.store.terminal_store import open_store
from tests.conftest import Broker
from tests.net.conftest import (
    DIM,
    EMBEDDER,
    PREFIX,
    SHARD,
    BackendKeys,
    make_host,
    make_terminal,
    unit_vector,
)
from tests.net.test_control import Client
from tests.net.test_e2e import wait_until

TOPICS = DeviceTopics(PREFIX, "gate-01")


def signed_raw(keys: BackendKeys, body: dict[str, Any]) -> bytes:
    """A correctly signed envelope serialised as an attacker would (NaN allowed)."""
    envelope = {
        "v": 1,
        "alg": "Ed25519",
        "key_id": key_id(keys.signing_key.public_key()),
        "body": body,
        "sig": sign_bytes(keys.signing_key, canonical_json(body)),
    }
    return json.dumps(envelope).encode()


def command_body(request_id: str, stamp: Any) -> dict[str, Any]:
    return {
        "kind": "cmd",
        "device_id": "gate-01",
        "name": "resync",
        "request_id": request_id,
        "issued_at": stamp,
        "args": {},
    }


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "1795000000", True, None])
def test_issued_at_must_be_a_finite_number(value: Any) -> None:
    with pytest.raises(PayloadRejected) as err:
        issued_at({"issued_at": value})
    assert err.value.reason == "bad_timestamp"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"v": 1, "n": ' + b"9" * 100_000 + b"}",
        b'{"v": 1, "n": 1e400}',
        b'{"v": 1, "n": NaN}',
        b'{"v": 1, "n": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"v": 1, "n": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
    ],
    ids=["100k-digits", "1e400", "nan", "deep-arrays", "deep-objects"],
)
def test_hostile_numbers_and_nesting_are_malformed(raw: bytes) -> None:
    with pytest.raises(PayloadRejected) as err:
        schemas.parse("Command", raw, max_bytes=1 << 20)
    assert err.value.reason == "malformed"


@pytest.mark.mqtt
def test_bad_timestamps_and_a_replay_after_restart_are_refused_and_counted(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.register(host)
    attacker = Client(broker, "attacker")
    fresh = signed_raw(backend_keys, command_body("a" * 32, time.time()))
    try:
        terminal.net.start()
        assert terminal.net.link.wait_connected(5)
        for n, stamp in enumerate([math.nan, math.inf, "1795000000", True]):
            raw = signed_raw(backend_keys, command_body(f"{n}" * 32, stamp))
            attacker.client.publish(TOPICS.cmd("resync"), raw, qos=1)
        attacker.client.publish(TOPICS.cmd("resync"), b'{"v": ' + b"7" * 100_000 + b"}", qos=1)
        attacker.client.publish(TOPICS.cmd("resync"), fresh, qos=1)
        assert host.wait_for(lambda h: len(h.command_results) == 1, 10)
        rejects = terminal.net.link.rejects
        assert wait_until(lambda: rejects["malformed"] == 3 and rejects["schema"] == 2)
        assert rejects["handler_error"] == 0
    finally:
        terminal.stop()
    # The same signed resync again after a restart, well within its age limit.
    again = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    try:
        again.net.start()
        assert again.net.link.wait_connected(5)
        attacker.client.publish(TOPICS.cmd("resync"), fresh, qos=1)
        # counted as a repeat: the terminal cannot tell a replay from the console's re-send
        assert wait_until(lambda: again.net.link.rejects["repeat"] == 1)
        # it did not run a second time: the result it recorded went out again
        assert host.wait_for(lambda h: len(h.command_results) == 2, 10)
        first, repeated = host.command_results
        assert repeated == first
    finally:
        attacker.close()
        again.stop()
        host.stop()


def test_refused_lines_are_rate_limited_with_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    refusals = RefusalLog(every_s=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="device.net.client"):
        for i in range(21_000):
            now[0] = i * 0.001  # 21k refusals in 21 s
            refusals.refused("Command", "t", "bad_signature", "x" * 500)
        assert refusals.lines == 1
        now[0] = 61.0
        refusals.tick()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "refused 20999 more inbound messages" in lines[1] and "bad_signature 20999" in lines[1]
    assert all(len(line) < 400 for line in lines)


@pytest.mark.mqtt
def test_the_host_never_debits_for_a_terminal_it_does_not_know(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()  # default config
    assert host.config.require_device_keys
    host.enrol("tok-rich", unit_vector(3), shard_id="station-a", balance=100_000, publish=False)
    ghost = make_terminal(broker.url, backend_keys, tmp_path / "ghost", device_id="ghost-1")
    try:
        ghost.net.start()
        ghost.pay("tok-rich", 99_999)  # approved offline, signed by an unknown key
        # refused, counted, never answered: nothing recorded, the row kept by the terminal
        assert wait_until(lambda: host.rejects["unknown_device"] >= 1)
        assert host.accounts.transactions() == []
        assert ghost.store.ledger.depth() == 1
        assert host.accounts.balance("tok-rich") == 100_000
    finally:
        ghost.stop()
        host.stop()


@pytest.mark.mqtt
def test_requests_arriving_before_the_handlers_are_held_then_run(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.register(host)
    terminal.stop()  # rebuilt as `blinkpay run` builds it: holding remote requests
    config = terminal.config
    store = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    net = NetService(
        config.mqtt,
        config.device.id,
        ledger=store.ledger,
        shard_store=TemplateShardPort(store.shard),
        state_dir=config.device.data_dir,
        signing_key=terminal.signing_key,
        hold_remote=True,
    )
    try:
        net.start()
        assert net.link.wait_connected(5)
        request_id = host.send_command("gate-01", "gate-test")
        assert wait_until(lambda: net.remote.held == 1)
        assert not host.command_results  # not refused as unsupported meanwhile
        net.register_command("gate-test", lambda args: CommandOutcome(True, "pulsed"))
        net.remote.release()
        assert host.wait_for(lambda h: len(h.command_results) == 1, 10)
        assert host.command_results[0]["request_id"] == request_id
        assert host.command_results[0]["ok"]
    finally:
        net.stop()
        store.close()
        host.stop()
