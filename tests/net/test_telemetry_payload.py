"""The telemetry a terminal sends carries its report interval and its software and model
versions, and passes the contract (docs/asyncapi.yaml)."""

from __future__ import annotations

from device.config import Config
from device.net.client import MqttLink
from device.net.config import MqttConfig
from device.net.schemas import check
from device.net.telemetry import AppMetrics, Telemetry, TelemetrySources
from device.net.topics import DeviceTopics
from device.vision.models import load_manifest


def test_telemetry_says_its_interval_and_versions() -> None:
    from device.app import model_versions

    link = MqttLink(MqttConfig(), "gate-01", software="blinkpay 0.1.0")
    versions = {"software": "blinkpay 0.1.0", "models": model_versions(Config())}
    sources = TelemetrySources(
        AppMetrics(), lambda: 0, lambda: {"shard_id": "s", "version": 1, "size": 0},
        interval_s=10.0, versions=versions,
    )  # fmt: skip
    payload = Telemetry(link, DeviceTopics("blinkpay/v1", "gate-01"), sources).collect()
    check("Telemetry", payload)
    assert payload["interval_s"] == 10.0
    # the default embedder (vision.embedder = "mobilefacenet"), as the manifest names it
    shipped = load_manifest().entry("embedder_mobilefacenet").raw["embedder_version"]
    assert payload["versions"]["models"]["embedder"] == shipped
