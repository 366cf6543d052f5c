"""MQTT settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from device.crypto.signing import read_private_file
from device.errors import BlinkpayError
from device.net.schemas import ID_PATTERN


class MqttConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = True
    url: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^\s/]+(:\d+)?$")
    prefix: str = "blinkpay/v1"
    shard_id: str = Field(default="default", pattern=ID_PATTERN)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # The broker credential `blinkpay-host` issued to this client (docs/broker.md): the
    # user name (a terminal's is its device id) and a file holding the password, readable
    # only by the user running blinkpay (0600), as the keys are.
    username: str | None = Field(default=None, pattern=ID_PATTERN)
    password_file: Path | None = None
    backend_public_key_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=600)
    auth_timeout_s: float = Field(default=2.5, gt=0.0, le=30.0)
    telemetry_interval_s: float = Field(default=30.0, ge=1.0)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    homeassistant_discovery: bool = False
    # "auto": MQTT 5, falling back to 3.1.1 when the broker refuses the protocol version.
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    # How long the broker keeps the session (and queued QoS 1 messages) while offline.
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, le=0xFFFFFFFF)
    reconnect_min_s: float = Field(default=1.0, gt=0.0, le=60.0)
    reconnect_max_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    tx_batch: int = Field(default=50, ge=1, le=1000)
    tx_retry_s: float = Field(default=30.0, ge=0.1, le=3600.0)
    max_snapshot_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    snapshot_timeout_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    command_max_age_s: float = Field(default=300.0, ge=1.0, le=86400.0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both)")
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together (the broker credential)")
        if self.cert_file is not None and not self.url.startswith("mqtts://"):
            raise ValueError("a client certificate needs an mqtts:// url")
        return self


def broker_password(path: Path) -> str:
    """The password of the broker credential: one line in a file only its owner reads."""
    raw = read_private_file(path)  # missing, too widely readable, another owner: one line
    try:
        password = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BlinkpayError(f"{path}: the broker password is not UTF-8 text") from None
    if not password or "\n" in password:
        raise BlinkpayError(f"{path}: give the broker password on one line")
    return password
