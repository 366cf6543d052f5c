"""Settings of the pure core: match decision, liveness, session timing, payment rules.

Amounts are integers in minor units (cents).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MatchConfig(_Section):
    # Cosine similarity of L2-normalised embeddings; how the defaults were measured and how
    # to recalibrate them with `blinkpay eval identify`: docs/matching.md.
    threshold: float = Field(default=0.95, gt=-1.0, lt=1.0)  # PIN-less match
    margin: float = Field(default=0.02, ge=0.0, lt=1.0)  # over the runner-up
    pin_threshold: float = Field(default=0.90, gt=-1.0, lt=1.0)  # candidates the PIN settles
    candidates: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> MatchConfig:
        if self.pin_threshold > self.threshold:
            raise ValueError("pin_threshold must not exceed threshold")
        return self


class LivenessConfig(_Section):
    # A blink (device/core/liveness.py): BOTH eyes drop under closed_ratio x the face's own
    # open baseline (per eye) and come back over reopen_ratio x baseline; timed from the
    # last open frame before the drop to the first reopened frame (so the frame rate is
    # part of the measurement).
    blink_min_ms: int = Field(default=60, ge=10)
    blink_max_ms: int = Field(default=500, ge=50)
    closed_ratio: float = Field(default=0.6, gt=0.0, lt=1.0)
    reopen_ratio: float = Field(default=0.8, gt=0.0, le=1.0)
    baseline_frames: int = Field(default=3, ge=2, le=60)  # open frames before a blink counts
    baseline_window_s: float = Field(default=2.0, gt=0.0, le=30.0)
    max_frame_gap_ms: int = Field(default=250, ge=20)  # longer gaps cannot time a blink
    min_open_openness: float = Field(default=0.12, ge=0.0, lt=1.0)  # a baseline below: eyes shut

    @model_validator(mode="after")
    def _ranges_consistent(self) -> LivenessConfig:
        if self.blink_min_ms >= self.blink_max_ms:
            raise ValueError("blink_min_ms must be below blink_max_ms")
        if self.closed_ratio >= self.reopen_ratio:
            raise ValueError("closed_ratio must be below reopen_ratio")
        return self


class SessionConfig(_Section):
    # The authorization timeout, relay pulse and passage timeout live in the mqtt and
    # hardware sections; Session.from_config() reads them there.
    face_frames: int = Field(default=3, ge=1, le=30)  # good frames of one face before the prompt
    intent_timeout_s: float = Field(default=6.0, gt=0.0)
    match_timeout_s: float = Field(default=2.0, gt=0.0)
    pin_timeout_s: float = Field(default=20.0, gt=0.0)
    pin_digit_timeout_s: float = Field(default=8.0, gt=0.0)
    pin_min_len: int = Field(default=4, ge=4, le=12)
    pin_max_len: int = Field(default=6, ge=4, le=12)
    vend_timeout_s: float = Field(default=30.0, gt=0.0)
    cooldown_s: float = Field(default=1.5, ge=0.0)

    @model_validator(mode="after")
    def _pin_lengths(self) -> SessionConfig:
        if self.pin_min_len > self.pin_max_len:
            raise ValueError("pin_min_len must not exceed pin_max_len")
        return self


class PaymentConfig(_Section):
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    fare: int = Field(default=250, ge=1)
    pin_over: int = Field(default=2000, ge=0)
    max_per_tx: int = Field(default=10_000, ge=1)
    max_per_user_day: int = Field(default=30_000, ge=1)
    offline_floor_limit: int = Field(default=500, ge=0)
    velocity_max: int = Field(default=5, ge=1)  # payments per user per velocity window
    velocity_window_s: int = Field(default=600, ge=1)
    pin_free_attempts: int = Field(default=2, ge=1, le=10)  # wrong PINs before a lockout
    pin_lock_base_s: float = Field(default=30.0, gt=0.0)  # doubles with every further wrong PIN
    pin_lock_max_s: float = Field(default=3600.0, gt=0.0)

    @model_validator(mode="after")
    def _caps_consistent(self) -> PaymentConfig:
        if self.max_per_tx > self.max_per_user_day:
            raise ValueError("max_per_tx must not exceed max_per_user_day")
        return self
