"""The session's PIN phase: the keypad while the PIN is asked, and the cancel key.

Digits stay in the PinEntry holder and leave only as enciphered ISO 9564 format 4
blocks, one per candidate, in the authorization request; the holder is wiped after.
"""

from __future__ import annotations

from device.core.events import Buzz, Effect, KeyPressed, Prompt, SetLeds
from device.core.pin_entry import CANCEL_KEY
from device.core.reasons import Reason
from device.core.session_authorization import AuthorizationPhase
from device.core.session_base import FACE_BOUND, State


class PinPhase(AuthorizationPhase):
    def _ask_pin(self, now: float, reasons: tuple[Reason, ...], out: list[Effect]) -> None:
        self._pin.start(now)
        self._go(State.PIN, out, reasons=reasons)
        out += [SetLeds("pin"), Prompt("Enter PIN, then #")]

    def _on_key(self, event: KeyPressed, out: list[Effect]) -> None:
        if self._state != State.PIN:
            if event.key == CANCEL_KEY:
                self._on_cancel(event.now, out)
            return
        progress = self._pin.on_key(event.key, event.now)
        match progress.feedback:
            case "digit" | "cleared":
                out += [Buzz("key"), Prompt("PIN " + "*" * progress.count)]
            case "refused":
                out.append(Buzz("error"))
            case "cancelled":
                self._abort(Reason.CANCELLED, out)
            case "timed_out":
                self._abort(Reason.PIN_TIMEOUT, out)
            case "done":
                secret = self._pin.result()
                assert secret is not None and self._pending is not None
                try:
                    self._authorize(event.now, self._pending, secret, out)
                finally:
                    secret.wipe()

    def _on_pin_tick(self, now: float, out: list[Effect]) -> None:
        if self._pin.tick(now).feedback == "timed_out":
            self._abort(Reason.PIN_TIMEOUT, out)

    def _on_cancel(self, now: float, out: list[Effect]) -> None:
        if self._state in (*FACE_BOUND, State.PIN, State.SELECT):
            self._abort(Reason.CANCELLED, out)
        elif self._state == State.AUTHORIZE:
            self._void(now, Reason.CANCELLED, out)
        elif self._state == State.IDLE and self.mode == "vending":
            self._amount = None
