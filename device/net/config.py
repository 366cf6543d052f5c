"""MQTT settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class MqttConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = True
    url: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^\s/]+(:\d+)?$")
    prefix: str = "blinkpay/v1"
    shard_id: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    backend_public_key_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=600)
    auth_timeout_s: float = Field(default=2.5, gt=0.0, le=30.0)
    telemetry_interval_s: float = Field(default=30.0, ge=1.0)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    homeassistant_discovery: bool = False
