"""The reference host's settings (TOML file and/or CLI flags), validated like the terminal's."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from device.errors import BlinkpayError
from device.net.config import MqttConfig
from device.net.topics import SHARE_GROUP

HOST_SESSION_EXPIRY_S = 60


class HostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host_id: str = Field(default="host-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    db_path: Path = Path("blinkpay-host.db")
    signing_key_file: Path = Path("backend_signing_key.pem")
    pin_key_file: Path = Path("pin.key")
    share_group: str = Field(default=SHARE_GROUP, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    snapshot_chunk_bytes: int = Field(default=64 * 1024, ge=256, le=8 * 1024 * 1024)
    # Must equal the terminals' embedder (models/manifest.json, role embedder): a shard of
    # another version is refused by the terminal's store.
    embedder_version: str = "dlib-resnet-v1-int8-1"
    dim: int = Field(default=128, ge=1, le=4096)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    # An online approval holds the amount until the terminal's row settles it; a hold whose
    # row has not come by then is released (docs/payment.md, "Settlement").
    hold_expiry_s: float = Field(default=86_400.0, gt=0.0, allow_inf_nan=False)
    hold_check_s: float = Field(default=60.0, gt=0.0, allow_inf_nan=False)
    # Refuse transactions from terminals whose public key the host does not know.
    require_device_keys: bool = False

    @model_validator(mode="after")
    def _short_host_sessions(self) -> Self:
        # A host's broker session holds its place in the shared subscription: a dead host
        # kept for days would be dealt a share of the terminals' requests that nobody
        # answers. Long enough to ride out a restart, unless set explicitly.
        if "session_expiry_s" not in self.mqtt.model_fields_set:
            self.mqtt = self.mqtt.model_copy(update={"session_expiry_s": HOST_SESSION_EXPIRY_S})
        return self


def load_host_config(path: Path | None) -> HostConfig:
    data = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BlinkpayError(f"{path}: {exc}") from None
    try:
        return HostConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise BlinkpayError(f"{path or 'host config'}: {problems}") from None
