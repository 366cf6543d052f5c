"""PIN entry on the keypad: a pure, clock-fed component that only ever shows a digit count.

Keys: digits append (beyond `max_len` they are refused), `#` submits (refused below
`min_len`), `*` clears the digits typed so far, or cancels the entry when nothing is typed.
The entry times out when no key comes for `digit_timeout_s` or the whole entry takes longer
than `entry_timeout_s`. The result is a SecretPin, which never prints its digits.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal, NoReturn

# The 4x3 keypad's keys and what they mean: rules of the terminal, not of its wiring.
KEYPAD_LAYOUT: tuple[str, ...] = ("123", "456", "789", "*0#")
CANCEL_KEY = "*"
ENTER_KEY = "#"
KeyKind = Literal["digit", "cancel", "enter"]

PinState = Literal["entering", "done", "cancelled", "timed_out"]
# What the last key did, for feedback (LED, click or error beep); never which digit.
PinFeedback = Literal["digit", "refused", "cleared", "done", "cancelled", "timed_out", "none"]


class SecretPin:
    """PIN digits that stay out of logs, reprs, f-strings, pickles and JSON."""

    __slots__ = ("_digits",)

    def __init__(self, digits: str) -> None:
        if not digits.isascii() or not digits.isdigit():
            raise ValueError("a PIN is made of digits only")
        self._digits = bytearray(digits.encode("ascii"))

    def reveal(self) -> str:
        """The digits, for the PIN-block encoder only."""
        return self._digits.decode("ascii")

    def wipe(self) -> None:
        """Overwrite the digits in place (best effort: Python may hold other copies)."""
        for i in range(len(self._digits)):
            self._digits[i] = 0
        self._digits = bytearray()

    def __len__(self) -> int:
        return len(self._digits)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretPin):
            return NotImplemented
        return hmac.compare_digest(bytes(self._digits), bytes(other._digits))

    def __hash__(self) -> int:
        raise TypeError("a SecretPin is not hashable")

    def __repr__(self) -> str:
        return "SecretPin(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SecretPin must not be pickled or copied")


@dataclass(frozen=True)
class PinProgress:
    state: PinState
    count: int  # digits typed so far: the only thing the display may show
    feedback: PinFeedback


class PinEntry:
    def __init__(
        self,
        min_len: int = 4,
        max_len: int = 6,
        digit_timeout_s: float = 8.0,
        entry_timeout_s: float = 20.0,
    ) -> None:
        if not 1 <= min_len <= max_len <= 12:  # ISO 9564 PINs are 4..12 digits
            raise ValueError("need 1 <= min_len <= max_len <= 12")
        self.min_len, self.max_len = min_len, max_len
        self.digit_timeout_s, self.entry_timeout_s = digit_timeout_s, entry_timeout_s
        self._digits: list[str] = []
        self._state: PinState = "entering"
        self._started_at = 0.0
        self._last_key_at = 0.0
        self._result: SecretPin | None = None

    def __repr__(self) -> str:
        return f"PinEntry(state={self._state!r}, count={len(self._digits)})"

    def start(self, now: float) -> PinProgress:
        self._clear()
        self._state = "entering"
        self._started_at = self._last_key_at = now
        self._result = None
        return self.progress("none")

    @property
    def state(self) -> PinState:
        return self._state

    @property
    def count(self) -> int:
        return len(self._digits)

    def progress(self, feedback: PinFeedback = "none") -> PinProgress:
        return PinProgress(self._state, len(self._digits), feedback)

    def result(self) -> SecretPin | None:
        """The PIN once `#` accepted it; None otherwise. Handed out once, then forgotten."""
        result, self._result = self._result, None
        return result

    def tick(self, now: float) -> PinProgress:
        """Apply the timeouts; call it regularly while entering."""
        if self._state == "entering" and (
            now - self._last_key_at >= self.digit_timeout_s
            or now - self._started_at >= self.entry_timeout_s
        ):
            self._clear()
            self._state = "timed_out"
            return self.progress("timed_out")
        return self.progress("none")

    def on_key(self, key: str, now: float) -> PinProgress:
        timed = self.tick(now)
        if self._state != "entering":
            return timed if timed.feedback == "timed_out" else self.progress("refused")
        self._last_key_at = now
        if key == CANCEL_KEY:
            if self._digits:
                self._clear()
                return self.progress("cleared")
            self._state = "cancelled"
            return self.progress("cancelled")
        if key == ENTER_KEY:
            if len(self._digits) < self.min_len:
                return self.progress("refused")
            self._result = SecretPin("".join(self._digits))
            self._clear()
            self._state = "done"
            return self.progress("done")
        if len(key) == 1 and key.isdigit() and len(self._digits) < self.max_len:
            self._digits.append(key)
            return self.progress("digit")
        return self.progress("refused")

    def _clear(self) -> None:
        self._digits.clear()
