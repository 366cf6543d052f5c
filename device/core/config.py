"""Settings of the pure core: match decision, liveness, session timing, payment rules.

Plain frozen dataclasses: the core takes values, not a config framework. Each field
declares its bounds with `setting(...)`; a section checks them (and its cross-field rules)
when it is made, so a core object is never built on settings that break it. device/config.py
loads these sections from TOML through pydantic, which reports every problem with its key.

Amounts are integers in minor units (cents).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


def setting(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    pattern: str | None = None,
) -> Any:
    """A field with its default and the bounds a valid value keeps."""
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt, "pattern": pattern}
    return field(default=default, metadata={k: v for k, v in bounds.items() if v is not None})


_COMPARE = {
    "ge": (lambda v, b: v >= b, "at least"),
    "gt": (lambda v, b: v > b, "above"),
    "le": (lambda v, b: v <= b, "at most"),
    "lt": (lambda v, b: v < b, "below"),
}


def _problem(name: str, value: Any, kind: type, bounds: dict[str, Any]) -> str | None:
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{name} = {value!r}: must be a whole number"
    if kind is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"{name} = {value!r}: must be a number"
    if kind is float and not math.isfinite(value):
        return f"{name} = {value!r}: must be finite"
    if kind is bool and not isinstance(value, bool):
        return f"{name} = {value!r}: must be true or false"
    if kind is str and not isinstance(value, str):
        return f"{name} = {value!r}: must be text"
    for key, bound in bounds.items():
        if key == "pattern":
            if not re.fullmatch(bound, value):
                return f"{name} = {value!r}: must match {bound}"
        elif not _COMPARE[key][0](value, bound):
            return f"{name} = {value!r}: must be {_COMPARE[key][1]} {bound}"
    return None


@dataclass(frozen=True)
class Settings:
    """Checks every field against its declared bounds, then the section's own rules."""

    # pydantic (device/config.py) reads this: unknown keys are errors, NaN/inf never pass.
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid", "allow_inf_nan": False}
    _TYPES: ClassVar[dict[str, type]] = {"int": int, "float": float, "str": str, "bool": bool}

    def __post_init__(self) -> None:
        for spec in fields(self):
            kind = self._TYPES[str(spec.type)]
            problem = _problem(spec.name, getattr(self, spec.name), kind, dict(spec.metadata))
            if problem:
                raise ValueError(problem)
        self.check()

    def check(self) -> None:
        """Cross-field rules; a section raises ValueError naming the keys."""

    @classmethod
    def type_problems(cls, values: dict[str, Any]) -> list[str]:
        """Values of the wrong kind before any conversion: a loader that coerces would turn
        `true` or "300" into an amount, so it asks here first."""
        problems = []
        for spec in fields(cls):
            if spec.name in values:
                kind = cls._TYPES[str(spec.type)]
                problem = _problem(spec.name, values[spec.name], kind, {})
                if problem:
                    problems.append(problem)
        return problems


@dataclass(frozen=True)
class MatchConfig(Settings):
    # Cosine similarity of L2-normalised embeddings; the defaults are the values calibrated
    # for the default embedder (device.core.match.CALIBRATED: the config's [match] starts
    # from the selected vision.embedder's row). How they were measured and how to
    # recalibrate them with `blinkpay eval identify`: docs/matching.md.
    threshold: float = setting(0.65, gt=-1.0, lt=1.0)  # PIN-less match, at reference_gallery
    margin: float = setting(0.0, ge=0.0, lt=1.0)  # over the runner-up
    pin_threshold: float = setting(0.50, gt=-1.0, lt=1.0)  # candidates the PIN settles
    candidates: int = setting(3, ge=1, le=10)
    # The PIN-less threshold rises with the shard: + threshold_per_decade for every 10x
    # more active templates than reference_gallery (never lowered below `threshold`), so the
    # false-positive rate stays near its target as the gallery grows
    # (device.core.match.for_gallery).
    reference_gallery: int = setting(1000, ge=1)
    threshold_per_decade: float = setting(0.096, ge=0.0, lt=1.0)

    def check(self) -> None:
        if self.pin_threshold > self.threshold:
            raise ValueError("pin_threshold must not exceed threshold")


@dataclass(frozen=True)
class LivenessConfig(Settings):
    # A blink (device/core/liveness.py): BOTH eyes drop under closed_ratio x the face's own
    # open baseline (per eye) and come back over reopen_ratio x baseline; timed from the
    # last open frame before the drop to the first reopened frame (so the frame rate is
    # part of the measurement).
    blink_min_ms: int = setting(60, ge=10)
    blink_max_ms: int = setting(500, ge=50)
    closed_ratio: float = setting(0.6, gt=0.0, lt=1.0)
    reopen_ratio: float = setting(0.8, gt=0.0, le=1.0)
    baseline_frames: int = setting(3, ge=2, le=60)  # open frames before a blink counts
    baseline_window_s: float = setting(2.0, gt=0.0, le=30.0)
    max_frame_gap_ms: int = setting(250, ge=20)  # longer gaps cannot time a blink
    min_open_openness: float = setting(0.12, ge=0.0, lt=1.0)  # a baseline below: eyes shut

    def check(self) -> None:
        if self.blink_min_ms >= self.blink_max_ms:
            raise ValueError("blink_min_ms must be below blink_max_ms")
        if self.closed_ratio >= self.reopen_ratio:
            raise ValueError("closed_ratio must be below reopen_ratio")


@dataclass(frozen=True)
class ChallengeConfig(Settings):
    # The illumination challenge (device/core/challenge.py; design in docs/liveness.md):
    # a random on/off code on the challenge light, one bit per bit_ms, judged bit by bit
    # (a sequential test) from min_bits on. It runs only on terminals whose
    # hardware.pins.challenge_light is set.
    code_bits: int = setting(20, ge=4, le=40)  # the longest code: the last look
    bit_ms: int = setting(200, ge=50, le=1000)  # 200: at most 2.5 flashes a second
    min_frames_per_bit: int = setting(1, ge=1, le=10)  # clean frames each bit needs
    max_lag_frames: int = setting(2, ge=0, le=5)  # camera delay tried: 0..this many frames
    # the weakest "on" bit must beat the strongest "off" bit by this (ln face/background):
    # 0.01 = 1 %, one grey level of an 8-bit camera at mid-grey, the smallest step it
    # resolves; below it a decode rides on rounding, not on light
    min_margin: float = setting(0.01, ge=0.0, le=1.0)
    # the false accept of a recording, over every look of the sequential test, is at most
    # 1 in this many: 4290 = 12 870 / 3, the bound of the fixed 16-bit balanced code with
    # 3 lags the challenge had before (docs/liveness.md)
    false_accept_one_in: int = setting(4290, ge=2, le=10**9)

    def check(self) -> None:
        from device.core.challenge import first_look  # the bound lives with the test

        if first_look(self) is None:
            raise ValueError(
                f"challenge.code_bits = {self.code_bits} is too short for a false accept of "
                f"1 in {self.false_accept_one_in} with {self.max_lag_frames + 1} lags"
            )

    @property
    def duration_s(self) -> float:
        """The longest code: when the last look is taken."""
        return self.code_bits * self.bit_ms / 1000.0

    @property
    def required_fps(self) -> float:
        """Frames a second so every bit keeps min_frames_per_bit frames clear of its edge
        (the frame that straddles a switch is dropped)."""
        return (self.min_frames_per_bit + 1) * 1000.0 / self.bit_ms


@dataclass(frozen=True)
class SessionConfig(Settings):
    # The authorization timeout, relay pulse and passage timeout live in the mqtt and
    # hardware sections; the shell passes them to the Session as plain values.
    # Upper bounds: a finite but huge timer (cooldown_s = 1e300) stops payments as surely
    # as an infinite one.
    face_frames: int = setting(3, ge=1, le=30)  # good frames of one face before the prompt
    intent_timeout_s: float = setting(6.0, gt=0.0, le=300.0)
    match_timeout_s: float = setting(2.0, gt=0.0, le=60.0)
    pin_timeout_s: float = setting(20.0, gt=0.0, le=300.0)
    pin_digit_timeout_s: float = setting(8.0, gt=0.0, le=120.0)
    pin_min_len: int = setting(4, ge=4, le=12)
    pin_max_len: int = setting(6, ge=4, le=12)
    vend_timeout_s: float = setting(30.0, gt=0.0, le=3600.0)
    # vending machine (MDB): the machine session a face opened waits this long for a choice
    select_timeout_s: float = setting(20.0, gt=0.0, le=3600.0)
    cooldown_s: float = setting(1.5, ge=0.0, le=60.0)
    # a turnstile whose passage contact saw the customer through: the gate is clear, the
    # next customer in the queue may start this soon (the face that paid stays spent)
    passage_cooldown_s: float = setting(0.0, ge=0.0, le=60.0)
    # A track with no passive verdict at all (cue disabled, weak detections) is refused
    # only when this is set; with verdicts, the majority decides (docs/liveness.md).
    passive_required: bool = setting(False)
    # A terminal without a challenge light cannot stop a full-screen replay of a blinking
    # customer (docs/liveness.md): its face payments ask for the PIN unless the operator
    # sets this, knowingly.
    pinless_without_ring: bool = setting(False)

    def check(self) -> None:
        if self.pin_min_len > self.pin_max_len:
            raise ValueError("pin_min_len must not exceed pin_max_len")


@dataclass(frozen=True)
class PaymentConfig(Settings):
    currency: str = setting("EUR", pattern=r"^[A-Z]{3}$")
    fare: int = setting(250, ge=1)
    pin_over: int = setting(2000, ge=0)
    max_per_tx: int = setting(10_000, ge=1)
    max_per_user_day: int = setting(30_000, ge=1)
    offline_floor_limit: int = setting(500, ge=0)
    velocity_max: int = setting(5, ge=1)  # payments per user per velocity window
    velocity_window_s: int = setting(600, ge=1)
    pin_free_attempts: int = setting(2, ge=1, le=10)  # wrong PINs before a lockout
    pin_lock_base_s: float = setting(30.0, gt=0.0)  # doubles with every further wrong PIN
    pin_lock_max_s: float = setting(3600.0, gt=0.0)

    def check(self) -> None:
        if self.max_per_tx > self.max_per_user_day:
            raise ValueError("max_per_tx must not exceed max_per_user_day")
        if self.fare > self.max_per_tx:
            raise ValueError("fare must not exceed max_per_tx (every ride would be refused)")
