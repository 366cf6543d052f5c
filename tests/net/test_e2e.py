"""End to end against a real mosquitto: the terminal's NetService and the reference host
enrol, sync deltas, match, authorize, approve and acknowledge; every message the broker
carried validates against its schema in docs/asyncapi.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend.host import PaymentHost
from device.core.events import AuthCandidate
from device.crypto.pinblock import encipher_pin_block, pan_for_token
from tests.conftest import Broker, start_broker
from tests.net.conftest import (
    PREFIX,
    SHARD,
    BackendKeys,
    Pki,
    Recorder,
    Terminal,
    make_host,
    make_terminal,
    unit_vector,
)

pytestmark = pytest.mark.mqtt

WAIT_S = 10.0

# The host hashes PINs with scrypt and seals templates: on a busy 2-core runner an answer
# or a delta can take seconds.
AUTH_WAIT_S = 10.0


def wait_until(predicate, timeout: float = WAIT_S) -> bool:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def run_payment_flow(host: PaymentHost, terminal: Terminal, keys: BackendKeys) -> None:
    net, shard = terminal.net, terminal.store.shard
    terminal.register(host)
    net.start()
    # Boot with no shard: the terminal asks for a snapshot and applies it.
    assert wait_until(lambda: net.shard_sync.version == 1, AUTH_WAIT_S), "no snapshot at boot"

    # Enrol: each enrolment is a signed delta (v2, v3) the terminal applies and acknowledges.
    host.enrol("tok-alice", unit_vector(1), shard_id=SHARD, pin="4321", balance=5000)
    host.enrol("tok-bob", unit_vector(2), shard_id=SHARD, balance=5000)
    assert wait_until(lambda: net.shard_sync.version == 3, AUTH_WAIT_S), "deltas not applied"
    assert wait_until(lambda: any(a["version"] == 3 for a in host.shard_acks), AUTH_WAIT_S)
    assert shard.account("tok-alice") is not None

    # Match: a probe near Alice's template finds her first.
    probe = unit_vector(1) + 0.05 * unit_vector(7)
    assert shard.search(probe, k=2)[0][0] == "tok-alice"

    # Authorize with her PIN (an encrypted ISO 9564 format-4 block), approve, write, sync.
    block = encipher_pin_block(keys.pin_key, "4321", pan_for_token("tok-alice"), os.urandom(8))
    tx_id = "018f4e2c-0000-7000-8000-000000000001"
    reply = net.authorize(
        tx_id=tx_id,
        amount=250,
        currency="EUR",
        candidates=[AuthCandidate("tok-alice", block)],
        timeout_s=AUTH_WAIT_S,
    )
    assert reply is not None and reply.approved and reply.token == "tok-alice"
    assert host.accounts.balance("tok-alice") == 4750

    wrong = encipher_pin_block(keys.pin_key, "1111", pan_for_token("tok-alice"), os.urandom(8))
    refused = net.authorize(
        tx_id="018f4e2c-0000-7000-8000-000000000002",
        amount=100,
        currency="EUR",
        timeout_s=AUTH_WAIT_S,
        candidates=[AuthCandidate("tok-alice", wrong)],
    )
    assert refused is not None and not refused.approved and refused.reason == "wrong_pin"

    terminal.pay("tok-alice", 250, tx_id=tx_id)
    assert wait_until(lambda: terminal.store.ledger.depth() == 0), "transaction not acknowledged"
    recorded = host.accounts.transactions()
    assert [t["tx_id"] for t in recorded] == [tx_id]
    assert recorded[0]["result"] == "recorded"  # the device signature verified
    assert host.accounts.balance("tok-alice") == 4750  # debited once, at authorization
    # Telemetry reports the shard and an empty outbox.
    assert wait_until(lambda: net.telemetry.collect()["outbox_depth"] == 0)


def check_captured(recorder: Recorder) -> None:
    topics = {topic.removeprefix(PREFIX + "/") for topic, _ in recorder.messages}
    for expected in (
        "dev/gate-01/status",
        "dev/gate-01/shard/req",
        f"shard/{SHARD}/snapshot",
        f"shard/{SHARD}/delta",
        "dev/gate-01/shard/ack",
        "dev/gate-01/auth/req",
        "dev/gate-01/auth/resp",
        "dev/gate-01/tx",
        "dev/gate-01/tx/ack",
        "dev/gate-01/telemetry",
    ):
        assert expected in topics, f"nothing captured on {expected}"
    assert recorder.validate_all() >= 12


def check_telemetry(recorder: Recorder) -> None:
    """A dashboard's view after the flow: the shard, an empty outbox, the broker round trip."""
    assert recorder.wait_for(
        lambda t, p: (
            t.endswith("/telemetry")
            and p["shard"] == {"shard_id": SHARD, "version": 3, "size": 2}
            and p["outbox_depth"] == 0
            and p["broker_rtt_ms"] is not None
        ),
        5,
    )


def test_enrol_delta_match_authorize_approve_acknowledge(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    recorder = recorder_factory(broker)
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    try:
        run_payment_flow(host, terminal, backend_keys)
        check_telemetry(recorder)
    finally:
        terminal.stop()
        host.stop()
    assert recorder.wait_for(
        lambda topic, p: topic.endswith("/status") and p["state"] == "offline", 5
    )
    check_captured(recorder)


def test_the_same_flow_over_mutual_tls(
    tmp_path: Path, pki: Pki, backend_keys: BackendKeys, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    broker = start_broker(tmp_path / "tls-broker", pki.broker_conf())
    try:
        url = f"mqtts://{broker.host}:{broker.port}"
        tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert)}
        tls["key_file"] = str(pki.client_key)
        recorder = recorder_factory(broker, tls=pki)
        host_tls = {**tls, "cert_file": str(pki.host_cert), "key_file": str(pki.host_key)}
        host = make_host(url, backend_keys, tmp_path / "host", **host_tls).start()
        terminal = make_terminal(url, backend_keys, tmp_path / "dev", **tls)
        try:
            run_payment_flow(host, terminal, backend_keys)
            check_telemetry(recorder)
        finally:
            terminal.stop()
            host.stop()
        check_captured(recorder)
    finally:
        broker.stop()


def test_a_client_without_a_certificate_is_refused(
    tmp_path: Path, pki: Pki, backend_keys: BackendKeys
) -> None:
    broker = start_broker(tmp_path / "tls-broker", pki.broker_conf())
    try:
        url = f"mqtts://{broker.host}:{broker.port}"
        terminal = make_terminal(url, backend_keys, tmp_path / "dev", ca_file=str(pki.ca))
        try:
            terminal.net.start()
            assert not terminal.net.link.wait_connected(1.5)
        finally:
            terminal.stop()
    finally:
        broker.stop()
