"""Prometheus text exposition (format 0.0.4) of the fleet and the console's counters, for
sites that run Grafana. Counts and gauges only: no token, no name, no biometric."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backend.console.health import HEALTHS
from backend.console.service import Console


def _labels(**labels: str) -> str:
    inner = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + inner + "}"


def _family(name: str, kind: str, help_: str, samples: Iterable[tuple[str, Any]]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {float(value):g}" for labels, value in samples if value is not None]
    return lines


def render_metrics(console: Console) -> str:
    snap = console.fleet.snapshot()
    rows = snap["terminals"]
    out: list[str] = []

    def gauge(name: str, help_: str, key: str) -> None:
        samples = [(_labels(device_id=r["device_id"]), r[key]) for r in rows]
        out.extend(_family(name, "gauge", help_, samples))

    out += _family(
        "blinkpay_terminal_up",
        "gauge",
        "1 when the terminal's retained status is online",
        [(_labels(device_id=r["device_id"]), r["state"] == "online") for r in rows],
    )
    out += _family(
        "blinkpay_terminal_health",
        "gauge",
        "1 for the terminal's computed health (ok, degraded, fault, out_of_service, offline,"
        " stale), 0 for the others",
        [
            (_labels(device_id=r["device_id"], health=h), r["health"] == h)
            for r in rows
            for h in HEALTHS
        ],
    )
    out += _family(
        "blinkpay_console_broker_up",
        "gauge",
        "1 while the console's own broker link is up",
        [("", snap["broker"]["up"])],
    )
    gauge(
        "blinkpay_terminal_last_seen_seconds",
        "Unix time of the last status or telemetry",
        "last_seen",
    )
    gauge("blinkpay_terminal_fps", "camera frames per second", "fps")
    gauge("blinkpay_terminal_outbox_depth", "ledger rows not yet acknowledged", "outbox_depth")
    gauge("blinkpay_terminal_shard_version", "template shard version held", "shard_version")
    gauge("blinkpay_terminal_shard_lag", "shard versions behind the host", "shard_lag")
    gauge("blinkpay_terminal_cpu_temp_celsius", "SoC temperature", "cpu_temp_c")
    gauge(
        "blinkpay_terminal_liveness_rejections",
        "liveness refusals this boot",
        "liveness_rejections",
    )
    out += _family(
        "blinkpay_terminal_decisions",
        "gauge",
        "decisions this boot by outcome",
        [
            (_labels(device_id=r["device_id"], outcome=k), v)
            for r in rows
            for k, v in r["decisions"].items()
        ],
    )
    out += _family(
        "blinkpay_terminal_rejected_messages",
        "gauge",
        "inbound messages refused, by reason",
        [
            (_labels(device_id=r["device_id"], reason=k), v)
            for r in rows
            for k, v in r["rejected"].items()
        ],
    )
    out += _family(
        "blinkpay_terminal_latency_ms",
        "gauge",
        "per-stage latency quantiles",
        [
            (_labels(device_id=r["device_id"], stage=s, quantile=q), v.get(f"p{q[2:]}"))
            for r in rows
            for s, v in r["latency_ms"].items()
            for q in ("0.50", "0.95")
        ],
    )
    out += _family(
        "blinkpay_console_refusals_total",
        "counter",
        "console requests refused, by reason",
        [(_labels(reason=k), v) for k, v in sorted(console.refusals.snapshot().items())],
    )
    out += _family(
        "blinkpay_host_mqtt_rejected_total",
        "counter",
        "MQTT messages the console refused",
        [(_labels(reason=k), v) for k, v in sorted(console.host.rejects.snapshot().items())],
    )
    return "\n".join(out) + "\n"
