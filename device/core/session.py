"""The payment session: a pure state machine from events to effects.

IDLE -> FACE -> INTENT -> MATCH -> [PIN] -> AUTHORIZE -> APPROVED | DECLINED -> ACTUATE
-> COOLDOWN -> IDLE. The shell feeds every event with the monotonic `now` it read (Tick
events at a few Hz drive the timeouts) and executes the returned effects in order. The
session is bound to one tracked face from FACE to MATCH: a blink, a challenge verdict or a
match result from any other track never counts. PIN digits stay in the PinEntry holder
and leave only as enciphered ISO 9564 format 4 blocks (the injected `encrypt_pin`).

This module routes events to the phases, one module each (device/core/session_base.py
says how they stack): liveness (session_liveness), match (session_match), PIN
(session_pin), authorization (session_authorization), actuation (session_actuation).
The cues and the match overlap: the challenge code plays from the moment a face is
bound, the match is asked with the prompt, and the host is asked as soon as liveness and
the match both hold.
"""

from __future__ import annotations

from dataclasses import replace

from device.core.events import (
    AmountSet,
    AuthResponse,
    AuthUnavailable,
    BlinkDetected,
    Cancel,
    ChallengeDone,
    Effect,
    Event,
    FaceLost,
    FaceSeen,
    KeyPressed,
    LivenessRejected,
    MatchResult,
    PassageSeen,
    PassiveSeen,
    Prompt,
    SecondFace,
    Tick,
    VendResult,
)
from device.core.reasons import Reason
from device.core.session_base import FACE_BOUND, Mode, PinEncryptor, State
from device.core.session_liveness import LivenessPhase

__all__ = ["Mode", "PinEncryptor", "Session", "State"]


class Session(LivenessPhase):
    def handle(self, event: Event) -> list[Effect]:
        out: list[Effect] = []
        match event:
            case Tick(now=now):
                self._on_tick(now, out)
            case FaceSeen():
                self._on_face(event, out)
            case FaceLost(track_id=track):
                if track == self._spent_track:
                    self._spent_track = None
                if track == self._next_track:
                    self._drop_next(out)
                if track == self._track and self._state in FACE_BOUND:
                    self._abort(Reason.FACE_LOST, out)
            case SecondFace():
                if self._state in FACE_BOUND and event.track_id != self._track:
                    self._abort(Reason.SECOND_FACE, out, prompt="One person at a time")
            case BlinkDetected(track_id=track, now=now):
                self._on_blink(now, track, out)
            case PassiveSeen(track_id=track, real=real):
                self._on_passive(track, real)
            case ChallengeDone():
                self._on_challenge(event, out)
            case LivenessRejected(track_id=track, now=now):
                if self._state in FACE_BOUND and track == self._track:
                    self._refuse_live(now, Reason.LIVENESS_FAILED, out)
            case MatchResult():
                if self._state == State.MATCH:
                    self._on_match(event, out)
                elif self._state in (State.FACE, State.INTENT):
                    self._hold_match(event)
            case KeyPressed():
                self._on_key(event, out)
            case AuthResponse():
                self._on_auth(event, out)
            case AuthUnavailable(tx_id=tx_id, now=now):
                if self._state == State.AUTHORIZE and tx_id == self.tx_id:
                    self._offline(now, Reason.AUTH_UNAVAILABLE, out)
            case AmountSet():
                self._on_amount(event, out)
            case Cancel(now=now):
                self._on_cancel(now, out)
            case PassageSeen(now=now):
                self._on_passage(now, out)
            case VendResult(tx_id=tx_id, success=success, now=now):
                self._on_vend_result(now, tx_id, success, out)
        return out

    def _on_tick(self, now: float, out: list[Effect]) -> None:
        if self._state == State.PIN:
            self._on_pin_tick(now, out)
            return
        if self._deadline is None or now < self._deadline:
            return
        match self._state:
            case State.INTENT:
                self._intent_timeout(now, out)
            case State.MATCH:
                self._abort(Reason.MATCH_TIMEOUT, out)
            case State.SELECT:
                self._abort(Reason.SELECT_TIMEOUT, out)
            case State.AUTHORIZE:
                self._offline(now, Reason.AUTH_TIMEOUT, out)
            case State.ACTUATE:
                self._actuation_timeout(now, out)
            case State.COOLDOWN:
                self._reset(out, now=now)

    def _on_amount(self, event: AmountSet, out: list[Effect]) -> None:
        if self.mode != "vending" or event.amount == self._amount:
            return
        if self.vend_session and self._state != State.SELECT:
            return  # MDB: a price counts only in the session this customer's face opened
        if self._state in (State.IDLE, State.FACE, State.INTENT, State.COOLDOWN):
            # nothing confirmed yet: follow the selection (and re-prompt in INTENT)
            self._amount = event.amount
            if self._state == State.INTENT:
                if event.amount is None:
                    self._abort(Reason.AMOUNT_MISSING, out)
                else:
                    out.append(Prompt(f"Blink to pay {self._money(event.amount)}"))
            self._maybe_prompt(event.now, out)
        elif self._state == State.SELECT and self._matched is not None:
            if event.amount is not None:  # the machine's price: now the rules can run
                self._amount = event.amount
                self._on_match(replace(self._matched, now=event.now), out)
        elif self._state in (State.MATCH, State.PIN):
            self._amount = event.amount  # the blink confirmed another amount
            self._abort(Reason.AMOUNT_CHANGED, out)
        elif self._state == State.AUTHORIZE:
            self._amount = event.amount
            self._void(event.now, Reason.AMOUNT_CHANGED, out)
