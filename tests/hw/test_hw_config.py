"""The hardware section of the config: wiring mistakes are refused before any pin is set up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from device.hw.config import HardwareConfig, PinMap


def test_passage_false_means_the_gate_has_no_pass_contact() -> None:
    pins = PinMap.model_validate({"passage": False})
    assert pins.passage is None and "passage" not in pins.named_pins()


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        ({"relay": 17}, "pins used twice: BCM 17"),
        ({"relay": 1}, "not a user GPIO"),
        ({"keypad_rows": [5, 6, 13]}, "4 keypad_rows and 3 keypad_cols"),
    ],
)
def test_wiring_mistakes_are_refused_with_the_reason(pins: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HardwareConfig.model_validate({"pins": pins})


def test_relay_pulse_shorter_than_100_ms_is_refused() -> None:
    with pytest.raises(ValidationError, match="relay_pulse_ms"):
        HardwareConfig(relay_pulse_ms=50)
