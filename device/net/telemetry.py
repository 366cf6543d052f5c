"""Periodic telemetry (and optional Home Assistant discovery) for fleet dashboards."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device.net.client import MqttLink
from device.net.topics import DeviceTopics

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature_c(path: Path = THERMAL_ZONE) -> float | None:
    """The SoC temperature, or None where the machine has no thermal zone."""
    try:
        return round(int(path.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


class AppMetrics:
    """What the app records for telemetry: thread-safe, bounded windows of recent samples."""

    def __init__(self, window: int = 512) -> None:
        self._lock = threading.Lock()
        self._latency: dict[str, deque[float]] = {}
        self._frames: deque[float] = deque(maxlen=window)
        self._window = window
        self.decisions: Counter[str] = Counter()
        self.liveness_rejections = 0
        self.service = {"state": "in_service", "detail": ""}
        # what the terminal can stop (device.config.replay_defence), set once at start
        self.liveness: dict[str, Any] = {}

    def stage(self, name: str, ms: float) -> None:
        with self._lock:
            self._latency.setdefault(name, deque(maxlen=self._window)).append(float(ms))

    def frame(self, at: float | None = None) -> None:
        with self._lock:
            self._frames.append(time.monotonic() if at is None else at)

    def decision(self, outcome: str) -> None:
        with self._lock:
            self.decisions[outcome] += 1

    def service_state(self, state: str, detail: str) -> None:
        with self._lock:
            self.service = {"state": state, "detail": detail[:256]}

    def set_liveness(self, posture: dict[str, Any]) -> None:
        with self._lock:
            self.liveness = dict(posture)

    def liveness_rejected(self) -> None:
        with self._lock:
            self.liveness_rejections += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            latency = {
                stage: {
                    "p50": round(float(np.percentile(samples, 50)), 3),
                    "p95": round(float(np.percentile(samples, 95)), 3),
                }
                for stage, samples in self._latency.items()
                if samples
            }
            frames = list(self._frames)
            fps = None
            if len(frames) >= 2 and frames[-1] > frames[0]:
                fps = round((len(frames) - 1) / (frames[-1] - frames[0]), 2)
            return {
                "fps": fps,
                "latency_ms": latency,
                "decisions": dict(self.decisions),
                "liveness_rejections": self.liveness_rejections,
                "service": dict(self.service),
                "liveness": dict(self.liveness),
            }


@dataclass
class TelemetrySources:
    """Callables the service wires in; each is cheap and thread-safe."""

    app: AppMetrics
    outbox_depth: Callable[[], int]
    shard: Callable[[], dict[str, Any]]
    thermal_path: Path = THERMAL_ZONE
    started: float = field(default_factory=time.monotonic)
    interval_s: float | None = None  # how often telemetry is sent (the console's staleness)
    versions: dict[str, Any] | None = None  # {"software": ..., "models": {role: version}}


# Home Assistant sensors: key in the telemetry payload, unit, device class.
HA_SENSORS = [
    ("uptime_s", "s", "duration"),
    ("cpu_temp_c", "°C", "temperature"),
    ("fps", "fps", None),
    ("outbox_depth", None, None),
    ("broker_rtt_ms", "ms", None),
    ("liveness_rejections", None, None),
]


class Telemetry:
    def __init__(
        self,
        link: MqttLink,
        topics: DeviceTopics,
        sources: TelemetrySources,
        *,
        homeassistant_discovery: bool = False,
    ) -> None:
        self._link = link
        self._topics = topics
        self._sources = sources
        self._seq = 0
        self._discovery = homeassistant_discovery
        if homeassistant_discovery:
            link.on_connect(lambda _present: self.publish_discovery())

    def collect(self) -> dict[str, Any]:
        self._seq += 1
        app = self._sources.app.snapshot()
        return {
            "v": 1,
            "device_id": self._topics.device_id,
            "boot_id": self._link.boot_id,
            "seq": self._seq,
            "ts": time.time(),
            "uptime_s": round(time.monotonic() - self._sources.started, 3),
            "cpu_temp_c": cpu_temperature_c(self._sources.thermal_path),
            "fps": app["fps"],
            "latency_ms": app["latency_ms"],
            "decisions": app["decisions"],
            "liveness_rejections": app["liveness_rejections"],
            "service": app["service"],
            "liveness": app["liveness"],
            "outbox_depth": int(self._sources.outbox_depth()),
            "shard": self._sources.shard(),
            "broker_rtt_ms": (
                None if self._link.broker_rtt_ms is None else round(self._link.broker_rtt_ms, 3)
            ),
            "rejected": self._link.rejects.snapshot(),
            **(
                {} if self._sources.interval_s is None else {"interval_s": self._sources.interval_s}
            ),
            **({} if self._sources.versions is None else {"versions": self._sources.versions}),
        }

    def tick(self) -> None:
        if self._link.connected:
            # QoS 1: its PUBACK times the broker round trip for the next report.
            self._link.publish(self._topics.telemetry, self.collect(), qos=1)

    def publish_discovery(self) -> None:
        device_id = self._topics.device_id
        device = {
            "identifiers": [f"blinkpay_{device_id}"],
            "name": device_id,
            "manufacturer": "blinkpay",
        }
        for key, unit, device_class in HA_SENSORS:
            config: dict[str, Any] = {
                "name": key.replace("_", " "),
                "unique_id": f"{device_id}_{key}",
                "state_topic": self._topics.telemetry,
                "value_template": "{{ value_json." + key + " }}",
                "availability_topic": self._topics.status,
                "availability_template": "{{ value_json.state }}",
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
            }
            if unit:
                config["unit_of_measurement"] = unit
            if device_class:
                config["device_class"] = device_class
            self._link.publish(
                f"homeassistant/sensor/{device_id}_{key}/config", config, qos=1, retain=True
            )
