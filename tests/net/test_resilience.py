"""Outages and hostile input against a real mosquitto: the broker killed mid-sync loses no
transaction; forged, replayed, oversize and malformed messages are refused and counted."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from device.crypto.signing import key_id
from device.net import schemas
from device.net.envelope import seal
from device.net.topics import ShardTopics
from tests.conftest import Broker
from tests.net.conftest import (
    PREFIX,
    SHARD,
    BackendKeys,
    make_host,
    make_terminal,
    unit_vector,
)
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt


def test_broker_killed_mid_sync_loses_no_transaction(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    recorder = recorder_factory(broker)  # paho reconnects it after the restart
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.register(host)
    try:
        terminal.net.start()
        assert wait_until(lambda: terminal.net.shard_sync.version == 1)
        host.enrol(
            "tok-alice", unit_vector(1), shard_id=SHARD, balance=100_000, offline_allowance=10**6
        )
        assert wait_until(lambda: terminal.net.shard_sync.version == 2)

        written = [terminal.pay("tok-alice", 10 + i) for i in range(10)]
        broker.stop(kill=True)  # SIGKILL while those are in flight
        assert wait_until(lambda: not terminal.net.link.connected, 5)
        written += [terminal.pay("tok-alice", 100 + i) for i in range(10)]  # while offline
        assert terminal.store.ledger.depth() > 0
        time.sleep(0.5)  # some reconnect attempts fail against the dead port
        broker.start()

        assert wait_until(lambda: terminal.store.ledger.depth() == 0, 20), "not all acknowledged"
        recorded = host.accounts.transactions()
        assert sorted(t["tx_id"] for t in recorded) == sorted(written)  # each once, none lost
        assert all(t["result"] == "recorded" for t in recorded)
        offline_debits = sum(10 + i for i in range(10)) + sum(100 + i for i in range(10))
        assert host.accounts.balance("tok-alice") == 100_000 - offline_debits
        assert wait_until(lambda: terminal.net.ledger_sync.acked == 20, 5)  # counted after commit
    finally:
        terminal.stop()
        host.stop()
    assert recorder.validate_all() > 0  # what it caught (it reconnects on its own schedule)


class Attacker:
    """A plain client that publishes whatever bytes it likes on the broker."""

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="attacker")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_forged_replayed_oversize_and_malformed_are_refused_and_counted(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    recorder = recorder_factory(broker)
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev", max_payload_bytes=4096)
    terminal.register(host)
    attacker = Attacker(broker)
    net = terminal.net
    try:
        net.start()
        assert wait_until(lambda: net.shard_sync.version == 1)
        first = host.enrol("tok-alice", unit_vector(1), shard_id=SHARD)
        assert wait_until(lambda: net.shard_sync.version == 2)
        topic = ShardTopics(PREFIX, SHARD).delta

        # Forged: a well-formed delta for seq 3 signed by someone else's key.
        plain = {**first, "seq": 3, "ops": [{**first["ops"][0], "token": "tok-mallory"}]}
        forged_delta = host.shards.wire_delta(plain)  # sealed as the host would
        forged = seal(Ed25519PrivateKey.generate(), {"kind": "delta", "delta": forged_delta})
        forged["key_id"] = key_id(backend_keys.signing_key.public_key())
        attacker.send(topic, schemas.dumps(forged))
        # Replayed: the genuine, validly signed seq-2 delta once more.
        attacker.send(topic, schemas.dumps(host.shards.delta_envelope(first)))
        # Oversize and malformed.
        attacker.send(topic, b'{"v": 1, "pad": "' + b"x" * 5000 + b'"}')
        attacker.send(topic, b'{"v": 1, "alg": "Ed25519", "body": ')

        counts = {"bad_signature": 1, "replay": 1, "oversize": 1, "malformed": 1}
        assert wait_until(lambda: all(net.link.rejects[k] == n for k, n in counts.items())), (
            net.link.rejects.snapshot()
        )
        assert net.shard_sync.version == 2
        assert terminal.store.shard.account("tok-mallory") is None

        # Dashboards see the counts in telemetry; the terminal still takes genuine deltas.
        assert recorder.wait_for(
            lambda t, p: (
                t.endswith("/telemetry")
                and all(p["rejected"].get(k) == n for k, n in counts.items())
            ),
            5,
        )
        host.enrol("tok-bob", unit_vector(2), shard_id=SHARD)
        assert wait_until(lambda: net.shard_sync.version == 3)
        assert terminal.store.shard.account("tok-bob") is not None
    finally:
        attacker.close()
        terminal.stop()
        host.stop()


def test_the_host_refuses_a_transaction_with_a_bad_device_signature(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    # The host knows another key for gate-01: the terminal's signature cannot verify.
    other = Ed25519PrivateKey.generate().public_key()
    host.register_device(terminal.device_id, other)
    try:
        terminal.net.start()
        tx_id = terminal.pay("tok-x", 5)
        # refused and counted, never answered nor recorded: the row stays in the outbox
        # (it goes through once the operator registers the terminal's real key)
        assert wait_until(lambda: host.rejects["bad_signature"] >= 1)
        assert host.accounts.transactions() == []
        assert terminal.store.ledger.depth() == 1
        host.enrol("tok-x", unit_vector(9), shard_id=SHARD, publish=False)
        host.register_device(terminal.device_id, terminal.public_key_pem())
        assert wait_until(lambda: terminal.store.ledger.depth() == 0)
        assert [r["tx_id"] for r in host.accounts.transactions()] == [tx_id]
    finally:
        terminal.stop()
        host.stop()


def test_unacknowledged_transactions_survive_a_terminal_restart(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.net.start()
    assert terminal.net.link.wait_connected(5)
    written = [terminal.pay("tok-e", 7 + i) for i in range(5)]  # no host: nobody acknowledges
    time.sleep(0.3)
    terminal.stop()

    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    host.enrol("tok-e", unit_vector(5), shard_id=SHARD, publish=False)
    again = make_terminal(broker.url, backend_keys, tmp_path / "dev")  # same store
    again.register(host)
    try:
        assert again.store.ledger.depth() == 5
        again.net.start()
        assert wait_until(lambda: again.store.ledger.depth() == 0)
        assert sorted(t["tx_id"] for t in host.accounts.transactions()) == sorted(written)
    finally:
        again.stop()
        host.stop()
