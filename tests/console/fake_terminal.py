"""Contract messages a terminal would publish (a retained status, telemetry), sent through
the rig's real broker by a plain MQTT client: the states a healthy test terminal cannot be
driven into on demand (a damaged ledger's fault, a ledger that cannot be written)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from device.net.topics import DeviceTopics
from tests.console.conftest import SHARD, ConsoleRig


def publish(rig: ConsoleRig, topic: str, payload: dict[str, Any], retain: bool = False) -> None:
    publish_many(rig, [(topic, payload)], retain)


def publish_many(
    rig: ConsoleRig, messages: list[tuple[str, dict[str, Any]]], retain: bool = False
) -> None:
    """Each (topic, payload), QoS 1, through one connection; returns once the broker has
    them all."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fake-{uuid.uuid4().hex}")
    client.connect(rig.broker.host, rig.broker.port)
    client.loop_start()
    try:
        sent = [
            (topic, client.publish(topic, json.dumps(payload), qos=1, retain=retain))
            for topic, payload in messages
        ]
        for topic, info in sent:
            info.wait_for_publish(timeout=10)
            assert info.is_published(), f"the broker did not take {topic}"
    finally:
        client.loop_stop()
        client.disconnect()


def topics(rig: ConsoleRig, device_id: str) -> DeviceTopics:
    return DeviceTopics(rig.config.mqtt.prefix, device_id)


def fault_status(rig: ConsoleRig, device_id: str, reason: str, detail: str) -> None:
    status = {
        "v": 1,
        "device_id": device_id,
        "state": "fault",
        "boot_id": uuid.uuid4().hex,
        "seq": 1,
        "ts": time.time(),
        "reason": reason,
        "detail": detail,
    }
    publish(rig, topics(rig, device_id).status, status, retain=True)


def telemetry(rig: ConsoleRig, device_id: str, seq: int = 1, **fields: Any) -> dict[str, Any]:
    body = telemetry_body(device_id, seq, **fields)
    publish(rig, topics(rig, device_id).telemetry, body)
    return body


def telemetry_body(device_id: str, seq: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "device_id": device_id,
        "boot_id": "0" * 32,
        "seq": seq,
        "ts": time.time(),
        "uptime_s": 10.0,
        "cpu_temp_c": 48.5,
        "fps": 12.0,
        "latency_ms": {"embed": {"p50": 30.0, "p95": 41.0}},
        "decisions": {"approved": 3},
        "liveness_rejections": 0,
        "service": {"state": "in_service", "detail": ""},
        "outbox_depth": 0,
        "shard": {"shard_id": SHARD, "version": 1, "size": 0},
        "broker_rtt_ms": 1.0,
        "rejected": {},
        "interval_s": 1.0,
        **fields,
    }


def event_body(
    device_id: str,
    seq: int,
    kind: str,
    outcome: str | None = None,
    reasons: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    """An `events` message as device/net/service.py publish_event writes it."""
    body: dict[str, Any] = {
        "v": 1,
        "device_id": device_id,
        "boot_id": "0" * 32,
        "seq": seq,
        "ts": time.time(),
        "type": kind,
        **fields,
    }
    if outcome is not None:
        body["outcome"] = outcome
    if reasons:
        body["reasons"] = list(reasons)
    return body


def events(rig: ConsoleRig, device_id: str, bodies: list[dict[str, Any]]) -> None:
    publish_many(rig, [(topics(rig, device_id).events, body) for body in bodies])
