"""The console's own settings: the `[console]` table of the host config (docs/console.md):
how long telemetry and events are kept, and where alerts are delivered."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

DAY = 86_400.0


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    mail_from: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    mail_to: list[str] = Field(min_length=1, max_length=32)


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Telemetry: every report kept this long, then only per-minute aggregates.
    raw_retention_s: float = Field(default=DAY, ge=60.0, allow_inf_nan=False)
    minute_retention_s: float = Field(default=30 * DAY, ge=3600.0, allow_inf_nan=False)
    event_retention_s: float = Field(default=30 * DAY, ge=3600.0, allow_inf_nan=False)
    # Alerts: JSON POSTs to each URL, and mail through SMTP, on raise and clear.
    webhooks: list[Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]] = Field(
        default_factory=list, max_length=16
    )
    smtp: SmtpSettings | None = None
    delivery_attempts: int = Field(default=6, ge=1, le=20)
    # Commands to a terminal that is offline wait this long, then expire.
    command_ttl_s: float = Field(default=3600.0, ge=0.0, allow_inf_nan=False)
    command_timeout_s: float = Field(default=120.0, ge=1.0, allow_inf_nan=False)
    # The site's time zone: every time the console shows is in it (IANA name).
    timezone: str = "Etc/UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Asia/Shanghai)"
            ) from None
        return value
