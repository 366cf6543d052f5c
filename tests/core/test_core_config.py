"""Core config sections refuse inconsistent settings; PIN digits never show in reprs."""

from __future__ import annotations

import pytest

from device.core import events as ev
from device.core.config import LivenessConfig, MatchConfig, PaymentConfig, SessionConfig


@pytest.mark.parametrize(
    ("section", "values"),
    [
        (MatchConfig, {"threshold": 0.8, "pin_threshold": 0.9}),
        (LivenessConfig, {"blink_min_ms": 500, "blink_max_ms": 400}),
        (LivenessConfig, {"closed_ratio": 0.8, "reopen_ratio": 0.7}),
        (LivenessConfig, {"baseline_frames": 1}),
        (SessionConfig, {"pin_min_len": 8, "pin_max_len": 6}),
        (PaymentConfig, {"max_per_tx": 50_000, "max_per_user_day": 10_000}),
        (PaymentConfig, {"currency": "eur"}),
        (PaymentConfig, {"surprise": 1}),
        (PaymentConfig, {"fare": True}),
        (SessionConfig, {"cooldown_s": float("inf")}),
    ],
)
def test_inconsistent_settings_are_refused(section: type, values: dict) -> None:
    with pytest.raises((ValueError, TypeError)):  # TypeError: a key the section lacks
        section(**values)


def test_defaults_are_valid() -> None:
    for section in (MatchConfig, LivenessConfig, SessionConfig, PaymentConfig):
        section()


def test_key_repr_hides_digits_but_not_control_keys() -> None:
    assert "7" not in repr(ev.KeyPressed(1.0, "7")) and "<digit>" in str(ev.KeyPressed(1.0, "7"))
    assert "'#'" in repr(ev.KeyPressed(1.0, "#"))
    cand = ev.AuthCandidate("alice", b"\x01" * 16)
    assert "<16 bytes>" in repr(cand) and "\\x01" not in repr(cand)
    assert "None" in repr(ev.AuthCandidate("alice", None))
