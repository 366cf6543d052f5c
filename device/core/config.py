"""Settings of the pure core: match decision, liveness, session timing, payment rules.

Amounts are integers in minor units (cents).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MatchConfig(_Section):
    # Cosine similarity of L2-normalised embeddings. Calibrated with `blinkpay eval`.
    threshold: float = Field(default=0.93, gt=-1.0, lt=1.0)
    margin: float = Field(default=0.03, ge=0.0, lt=1.0)
    candidates: int = Field(default=3, ge=1, le=10)


class LivenessConfig(_Section):
    blink_min_ms: int = Field(default=60, ge=10)
    blink_max_ms: int = Field(default=500, ge=50)
    closed_ratio: float = Field(default=0.6, gt=0.0, lt=1.0)


class SessionConfig(_Section):
    intent_timeout_s: float = Field(default=6.0, gt=0.0)
    pin_timeout_s: float = Field(default=20.0, gt=0.0)
    pin_digit_timeout_s: float = Field(default=8.0, gt=0.0)
    cooldown_s: float = Field(default=1.5, ge=0.0)


class PaymentConfig(_Section):
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    fare: int = Field(default=250, ge=1)
    pin_over: int = Field(default=2000, ge=0)
    max_per_tx: int = Field(default=10_000, ge=1)
    max_per_user_day: int = Field(default=30_000, ge=1)
    offline_floor_limit: int = Field(default=500, ge=0)

    @model_validator(mode="after")
    def _caps_consistent(self) -> PaymentConfig:
        if self.max_per_tx > self.max_per_user_day:
            raise ValueError("max_per_tx must not exceed max_per_user_day")
        return self
