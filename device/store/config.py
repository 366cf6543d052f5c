"""Store settings: database and key files (relative paths are under device.data_dir)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IndexKind = Literal["auto", "faiss-sq8", "float32", "int8-cv2"]


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    db_file: Path = Path("blinkpay.db")
    data_key_file: Path = Path("keys/data.key")
    signing_key_file: Path = Path("keys/device_ed25519.pem")
    # X25519: opens the templates the host seals to this device on the wire (provision).
    box_key_file: Path = Path("keys/device_x25519.pem")
    # AES key shared with the payment host for ISO 9564 format 4 PIN blocks (provision).
    pin_key_file: Path = Path("keys/pin.key")
    # Unacknowledged transactions kept while offline; beyond it new payments are refused.
    outbox_max_rows: int = Field(default=1_000_000, ge=1000)
    # Threads scanning the int8-cv2 index (the Pi 4/5 has 4 cores; vision uses the rest);
    # faiss-sq8 scans on one thread, float32 on BLAS's.
    search_threads: int = Field(default=2, ge=1, le=8)
    # Acknowledged transactions are deleted once older than this many days (at least 2:
    # the daily spending caps read today's and yesterday's rows); unacknowledged ones stay.
    ledger_retention_days: int = Field(default=90, ge=2, le=3650)
    # 1:N index: auto = faiss-sq8 when faiss imports (exact, fastest measured), else float32.
    index: IndexKind = "auto"
