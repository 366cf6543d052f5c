"""PIN entry: masking, length limits, timeouts, cancel; and SecretPin never shows digits."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import pickle

import pytest

from device.core.pin_entry import PinEntry, SecretPin


def typed(entry: PinEntry, keys: str, start: float = 0.0, gap: float = 0.5) -> list[str]:
    return [entry.on_key(key, start + i * gap).feedback for i, key in enumerate(keys)]


def test_digits_then_enter_give_the_pin_and_only_counts_are_shown() -> None:
    entry = PinEntry(min_len=4, max_len=6)
    entry.start(0.0)
    counts = []
    for i, key in enumerate("2468"):
        progress = entry.on_key(key, 0.5 * (i + 1))
        counts.append(progress.count)
        assert [f.name for f in dataclasses.fields(progress)] == ["state", "count", "feedback"]
    assert counts == [1, 2, 3, 4]
    assert entry.on_key("#", 3.0).state == "done"
    pin = entry.result()
    assert pin is not None and pin.reveal() == "2468"
    assert entry.result() is None  # handed out once


def test_enter_below_min_length_is_refused_and_extra_digits_beyond_max() -> None:
    entry = PinEntry(min_len=4, max_len=5)
    entry.start(0.0)
    assert typed(entry, "12#") == ["digit", "digit", "refused"]
    assert entry.state == "entering"
    assert typed(entry, "3456", start=2.0) == ["digit", "digit", "digit", "refused"]
    assert entry.count == 5
    entry.on_key("#", 5.0)
    pin = entry.result()
    assert pin is not None and pin.reveal() == "12345"


def test_cancel_clears_typed_digits_then_cancels_an_empty_entry() -> None:
    entry = PinEntry()
    entry.start(0.0)
    typed(entry, "987")
    progress = entry.on_key("*", 2.0)
    assert (progress.feedback, progress.count, progress.state) == ("cleared", 0, "entering")
    progress = entry.on_key("*", 2.5)
    assert (progress.feedback, progress.state) == ("cancelled", "cancelled")
    assert entry.result() is None
    assert entry.on_key("1", 3.0).feedback == "refused"  # finished entries take no keys


def test_digit_timeout_counts_from_the_last_key() -> None:
    entry = PinEntry(digit_timeout_s=5.0, entry_timeout_s=60.0)
    entry.start(0.0)
    entry.on_key("1", 4.0)
    assert entry.tick(8.9).state == "entering"
    progress = entry.tick(9.0)
    assert (progress.state, progress.feedback, progress.count) == ("timed_out", "timed_out", 0)
    assert entry.result() is None


def test_whole_entry_timeout_even_while_typing() -> None:
    entry = PinEntry(min_len=4, max_len=12, digit_timeout_s=5.0, entry_timeout_s=10.0)
    entry.start(100.0)
    for i in range(3):
        entry.on_key("5", 100.0 + 3.0 * (i + 1))  # a digit every 3 s: never a digit timeout
    assert entry.on_key("5", 110.0).state == "timed_out"  # the key that comes too late
    assert entry.count == 0


def test_restart_forgets_everything() -> None:
    entry = PinEntry()
    entry.start(0.0)
    typed(entry, "12")
    entry.start(10.0)
    assert entry.count == 0 and entry.state == "entering"


def test_secret_pin_hides_digits_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    pin = SecretPin("4321")
    percent_formatted = "%s" % pin  # noqa: UP031 (%-formatting is what log records use)
    for shown in (repr(pin), str(pin), f"{pin}", percent_formatted, f"{[pin]}"):
        assert "4321" not in shown and "4" not in shown
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("pin %s %r", pin, pin)
    assert "4321" not in caplog.text
    with pytest.raises(TypeError):
        pickle.dumps(pin)
    with pytest.raises(TypeError):
        copy.deepcopy(pin)
    with pytest.raises(TypeError):
        json.dumps(pin)
    assert len(pin) == 4 and pin == SecretPin("4321") and pin != SecretPin("4320")
    pin.wipe()
    assert len(pin) == 0


def test_secret_pin_takes_digits_only() -> None:
    with pytest.raises(ValueError):
        SecretPin("12a4")
    with pytest.raises(ValueError):
        SecretPin("١٢٣٤")  # Arabic-Indic digits are str.isdigit() but not PIN digits


def test_entry_repr_shows_count_not_digits() -> None:
    entry = PinEntry()
    entry.start(0.0)
    typed(entry, "777")
    assert "7" not in repr(entry).replace("count=3", "")
