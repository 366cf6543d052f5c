"""Store settings: database and key files (relative paths are under device.data_dir)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    db_file: Path = Path("blinkpay.db")
    data_key_file: Path = Path("keys/data.key")
    signing_key_file: Path = Path("keys/device_ed25519.pem")
    outbox_max_rows: int = Field(default=1_000_000, ge=1000)
