"""Authorization edge cases, MQTT 3.1.1, shared-subscription hosts, signed commands and
remote config, and Home Assistant discovery, against a real mosquitto."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device.core.events import AuthCandidate
from device.crypto.signing import sign_document
from device.net import schemas
from device.net.client import backoff_delay
from device.net.envelope import seal
from device.net.remote_control import CommandOutcome
from device.net.topics import DeviceTopics
from tests.conftest import Broker
from tests.net.conftest import PREFIX, SHARD, BackendKeys, make_host, make_terminal, unit_vector
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt

TOPICS = DeviceTopics(PREFIX, "gate-01")


class Client:
    """A plain MQTT 5 client that collects what arrives on its filters."""

    def __init__(self, broker: Broker, client_id: str, *filters: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.on_message: Any = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        ready = threading.Event()

        def on_connect(c: mqtt.Client, *_: Any) -> None:
            for topic_filter in filters:
                c.subscribe(topic_filter, qos=1)
            ready.set()

        def on_message(c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
            self.messages.append(message)
            if self.on_message is not None:
                self.on_message(message)

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(5)
        time.sleep(0.1)  # SUBACK

    def payloads(self, suffix: str) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.messages if m.topic.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, 60.0, rng) for n in range(12)]
    assert 0.5 <= delays[0] <= 1.0 and 30.0 <= delays[-1] <= 60.0
    assert all(b >= a / 2 for a, b in itertools.pairwise(delays))
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered


def test_forged_answers_are_refused_and_counted(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    """Anyone on the broker can publish: an unsigned or wrongly signed approval, and an ack
    for a row the host never got, change nothing on the terminal and are counted."""
    forger_key = Ed25519PrivateKey.generate()
    forger = Client(broker, "forger", f"{PREFIX}/dev/+/auth/req")

    def approve_everything(message: mqtt.MQTTMessage) -> None:
        request = json.loads(message.payload)
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = message.properties.CorrelationData
        base = {"v": 1, "request_id": request["request_id"], "tx_id": request["tx_id"]}
        unsigned = {**base, "decision": "approved", "reason": "ok"}
        forged = {**unsigned, "signature": sign_document(unsigned, forger_key)}
        for answer in (unsigned, forged):
            forger.client.publish(
                message.topic.replace("/auth/req", "/auth/resp"),
                schemas.dumps(answer),
                qos=1,
                properties=props,
            )

    forger.on_message = approve_everything
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    try:
        terminal.net.start()
        assert terminal.net.link.wait_connected(5)
        tx_id = terminal.pay("tok-f", 250)
        reply = terminal.net.authorize(
            tx_id="018f4e2c-0000-7000-8000-0000000000f1",
            amount=250,
            currency="EUR",
            candidates=[AuthCandidate("tok-f")],
            timeout_s=1.0,
        )
        assert reply is None  # no host answered: the terminal uses its offline rules
        ack = {"v": 1, "tx_id": tx_id, "row_digest": "0" * 64, "result": "recorded"}
        ack["status"] = "approved"
        for forged_ack in (ack, {**ack, "signature": sign_document(ack, forger_key)}):
            forger.client.publish(
                f"{PREFIX}/dev/{terminal.device_id}/tx/ack", schemas.dumps(forged_ack), qos=1
            )
        rejects = terminal.net.link.rejects
        # unsigned: refused by the schema; signed by another key: by the signature check
        assert wait_until(lambda: rejects["bad_signature"] >= 2 and rejects["schema"] >= 2)
        assert terminal.store.ledger.get(tx_id).acked_at is None  # still resent to the host
    finally:
        terminal.stop()
        forger.close()


def test_late_and_duplicate_authorization_answers_are_ignored(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    recorder = recorder_factory(broker)
    slow_host = Client(broker, "slow-host", f"{PREFIX}/dev/+/auth/req")

    def answer_twice_late(message: mqtt.MQTTMessage) -> None:
        request = json.loads(message.payload)
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = message.properties.CorrelationData
        response = {
            "v": 1,
            "request_id": request["request_id"],
            "tx_id": request["tx_id"],
            "decision": "approved",
            "reason": "ok",
        }
        response["signature"] = sign_document(response, backend_keys.signing_key)
        delay = request["amount"] / 1000.0  # the test picks the delay through the amount

        def send() -> None:
            for _ in range(2):
                slow_host.client.publish(
                    message.topic.replace("/auth/req", "/auth/resp"),
                    schemas.dumps(response),
                    qos=1,
                    properties=props,
                )

        threading.Timer(delay, send).start()

    slow_host.on_message = answer_twice_late
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    auth = terminal.net.authorizer
    try:
        terminal.net.start()
        assert terminal.net.link.wait_connected(5)
        tx = "018f4e2c-0000-7000-8000-0000000000b1"
        late = terminal.net.authorize(
            tx_id=tx, amount=600, currency="EUR", candidates=[AuthCandidate("t")], timeout_s=0.2
        )
        assert late is None and auth.timeouts == 1
        assert wait_until(lambda: auth.late_or_duplicate == 2)  # both late copies dropped
        quick = terminal.net.authorize(
            tx_id=tx.replace("b1", "b2"),
            amount=10,
            currency="EUR",
            candidates=[AuthCandidate("t")],
            timeout_s=3,
        )
        assert quick is not None and quick.approved
        assert wait_until(lambda: auth.late_or_duplicate == 3)  # its duplicate is harmless
    finally:
        terminal.stop()
        slow_host.close()
    assert recorder.validate_all() > 0  # every captured message matches its schema


def test_mqtt_311_terminal_correlates_by_request_id(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    recorder = recorder_factory(broker)
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev", protocol="3.1.1")
    terminal.register(host)
    try:
        terminal.net.start()
        assert wait_until(lambda: terminal.net.shard_sync.version == 1)
        host.enrol("tok-c", unit_vector(5), shard_id=SHARD, balance=100)
        reply = terminal.net.authorize(
            tx_id="018f4e2c-0000-7000-8000-0000000000c1",
            amount=40,
            currency="EUR",
            candidates=[AuthCandidate("tok-c")],
        )
        assert terminal.net.link.protocol == "3.1.1"
        assert reply is not None and reply.approved and reply.token == "tok-c"
    finally:
        terminal.stop()
        host.stop()
    assert recorder.validate_all() > 0  # every captured message matches its schema


def test_two_hosts_share_the_requests(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    recorder = recorder_factory(broker)
    hosts = [
        make_host(broker.url, backend_keys, tmp_path / "host", host_id=name).start()
        for name in ("host-a", "host-b")
    ]  # one database, two processes' worth of clients in one shared subscription group
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.register(hosts[0])
    try:
        terminal.net.start()
        assert wait_until(lambda: terminal.net.shard_sync.version == 1)
        hosts[0].enrol("tok-d", unit_vector(6), shard_id=SHARD, balance=10_000)
        answered_by = []
        for i in range(8):
            reply = terminal.net.authorize(
                tx_id=f"018f4e2c-0000-7000-8000-0000000000{i:02d}",
                amount=5,
                currency="EUR",
                candidates=[AuthCandidate("tok-d")],
            )
            assert reply is not None and reply.approved
            answered_by.append(reply.host_id)
        assert set(answered_by) == {"host-a", "host-b"}
        assert hosts[1].accounts.balance("tok-d") == 10_000 - 8 * 5  # each debited once
        assert terminal.net.authorizer.late_or_duplicate == 0  # nobody answered twice
    finally:
        terminal.stop()
        for host in hosts:
            host.stop()
    assert recorder.validate_all() > 0  # every captured message matches its schema


def test_signed_commands_run_once_while_fresh(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    recorder = recorder_factory(broker)
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.register(host)
    net = terminal.net
    pulses: list[dict[str, Any]] = []

    def pulse(args: dict[str, Any]) -> CommandOutcome:
        pulses.append(args)
        return CommandOutcome(True, "pulsed", {"ms": 300})

    net.register_command("gate-test", pulse)
    attacker = Client(broker, "attacker")
    try:
        net.start()
        assert wait_until(lambda: net.shard_sync.version == 1)
        gate = host.send_command("gate-01", "gate-test", {"pulse_ms": 300})
        resync = host.send_command("gate-01", "resync")
        missing = host.send_command("gate-01", "reboot")
        assert wait_until(lambda: len(host.command_results) == 3)
        results = {r["request_id"]: r for r in host.command_results}
        assert results[gate]["ok"] and results[gate]["result"] == {"ms": 300}
        assert results[resync]["ok"]
        assert not results[missing]["ok"] and "not supported" in results[missing]["detail"]

        body = {"kind": "cmd", "device_id": "gate-01", "name": "gate-test", "args": {}}
        now = time.time()
        replayed = seal(backend_keys.signing_key, {**body, "request_id": gate, "issued_at": now})
        stale = {**body, "request_id": "f" * 32, "issued_at": now - 3600}
        for envelope in (replayed, seal(backend_keys.signing_key, stale)):
            attacker.client.publish(TOPICS.cmd("gate-test"), schemas.dumps(envelope), qos=1)
        rejects = net.link.rejects
        assert wait_until(lambda: rejects["repeat"] == 1 and rejects["stale"] == 1)
        # the repeated request id did not run again: its recorded result went out again
        assert wait_until(lambda: len(host.command_results) == 4)
        again = host.command_results[-1]
        assert again["request_id"] == gate and again["result"] == {"ms": 300}, again
        assert (again["ok"], again["detail"]) == (results[gate]["ok"], results[gate]["detail"])
        assert pulses == [{"pulse_ms": 300}]  # one pulse
    finally:
        attacker.close()
        terminal.stop()
        host.stop()
    assert recorder.validate_all() > 0  # every captured message matches its schema


def test_remote_config_is_applied_or_refused_with_the_reason(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    recorder = recorder_factory(broker)
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.register(host)
    applied: list[tuple[dict[str, Any], int]] = []

    def apply(partial: dict[str, Any], version: int) -> str | None:
        if "device" in partial:
            return "device.* cannot change remotely"
        applied.append((partial, version))
        return None

    terminal.net.on_config(apply)
    try:
        terminal.net.start()
        assert terminal.net.link.wait_connected(5)
        host.send_config("gate-01", 3, {"payment": {"max_amount": 500}})
        host.send_config("gate-01", 3, {"payment": {"max_amount": 900}})  # replay
        host.send_config("gate-01", 4, {"device": {"id": "other"}})
        assert wait_until(lambda: len(host.config_states) == 3)
        # the host's handler threads may record them in any order: sort by what they say
        states = sorted(
            (s["version"], s["status"], s.get("reason", "")) for s in host.config_states
        )
        assert states[0] == (3, "applied", "")
        assert states[1][:2] == (3, "refused") and "not above" in states[1][2]
        assert states[2] == (4, "refused", "device.* cannot change remotely")
        assert applied == [({"payment": {"max_amount": 500}}, 3)]
        assert terminal.net.remote.config_version == 3
    finally:
        terminal.stop()
        host.stop()
    # The applied version survives a restart: version 3 is still a replay.
    again = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    try:
        assert again.net.remote.config_version == 3
    finally:
        again.stop()
    assert recorder.validate_all() > 0  # every captured message matches its schema


def test_home_assistant_discovery_announces_sensors(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    watcher = Client(broker, "home-assistant", "homeassistant/#")
    terminal = make_terminal(
        broker.url, backend_keys, tmp_path / "dev", homeassistant_discovery=True
    )
    try:
        terminal.net.start()
        assert wait_until(lambda: len(watcher.messages) >= 6)
        configs = [json.loads(m.payload) for m in watcher.messages]
        assert {c["state_topic"] for c in configs} == {TOPICS.telemetry}
        assert {c["availability_topic"] for c in configs} == {TOPICS.status}
        assert "gate-01_cpu_temp_c" in {c["unique_id"] for c in configs}
    finally:
        terminal.stop()
        watcher.close()
