"""The payment session's shared room: its states, what one attempt holds, and the moves
every phase makes (go to a state, abort, decline, cool down, reset).

The session (device/core/session.py) is built from one module per phase, each a class on
top of the one its phase hands over to:

    SessionBase -> ActuationPhase -> AuthorizationPhase -> PinPhase -> MatchPhase
    -> LivenessPhase -> Session

so a phase calls the phases after it (liveness starts the match, the match asks for the
PIN or the authorization, the authorization approves and actuates), never the ones before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from device.core import policy
from device.core.challenge import RandBelow
from device.core.config import ChallengeConfig, PaymentConfig, SessionConfig
from device.core.events import (
    Buzz,
    Effect,
    MatchResult,
    Notify,
    Prompt,
    SetLeds,
    StateChanged,
    StopChallenge,
    TxRecord,
)
from device.core.liveness_gate import Challenge, LivenessGate
from device.core.pin_entry import PinEntry, SecretPin
from device.core.reasons import Reason

Mode = Literal["turnstile", "vending"]
PinEncryptor = Callable[[SecretPin, str], bytes]  # (pin, account token) -> format 4 block


class State(StrEnum):
    IDLE = "idle"
    FACE = "face"
    INTENT = "intent"
    MATCH = "match"
    SELECT = "select"  # vending machine: the customer is known, the machine waits for a choice
    PIN = "pin"
    AUTHORIZE = "authorize"
    APPROVED = "approved"
    DECLINED = "declined"
    ACTUATE = "actuate"
    COOLDOWN = "cooldown"


# States where the customer has not committed yet: a face problem ends the attempt.
FACE_BOUND = (State.FACE, State.INTENT, State.MATCH)


@dataclass(frozen=True)
class Pending:
    """A matched attempt waiting for the PIN or the host: who may pay and why."""

    kind: str
    reasons: tuple[Reason, ...]
    tokens: tuple[str, ...]  # payable candidates, best first
    score: float
    accounts: Mapping[str, policy.Payer]


@dataclass
class Tx:
    record: TxRecord
    pin_used: bool
    accounts: Mapping[str, policy.Payer]


class SessionBase:
    def __init__(
        self,
        cfg: SessionConfig,
        payment: PaymentConfig,
        mode: Mode,
        *,
        new_tx_id: Callable[[], str],
        encrypt_pin: PinEncryptor,
        auth_timeout_s: float,
        relay_pulse_ms: int,
        passage_timeout_s: float | None,
        lockouts: Mapping[str, policy.PinLockout] | None = None,
        challenge: ChallengeConfig | None = None,
        randbelow: RandBelow | None = None,
        vend_session: bool = False,
    ) -> None:
        """vend_session: vending over MDB, where the machine asks for a price only inside a
        session the reader opened, so face and blink come first (SELECT waits for it)."""
        if challenge is not None:
            if randbelow is None:
                raise ValueError("the illumination challenge needs a random source")
            if challenge.duration_s >= cfg.intent_timeout_s:
                raise ValueError("the challenge code must fit in intent_timeout_s")
        self.cfg, self.payment, self.mode = cfg, payment, mode
        self.challenge, self._randbelow = challenge, randbelow
        self._gate = LivenessGate(cfg.passive_required)
        self._new_tx_id, self._encrypt_pin = new_tx_id, encrypt_pin
        self.auth_timeout_s, self.relay_pulse_ms = auth_timeout_s, relay_pulse_ms
        self.passage_timeout_s = passage_timeout_s
        self._lockouts: dict[str, policy.PinLockout] = dict(lockouts or {})
        self._state = State.IDLE
        self._track: int | None = None
        self._good_frames = 0
        self._spent_track: int | None = None  # the face that just paid: not again until it leaves
        self._amount: int | None = payment.fare if mode == "turnstile" else None
        self._deadline: float | None = None
        self._tx: Tx | None = None
        self._pin = PinEntry(
            cfg.pin_min_len, cfg.pin_max_len, cfg.pin_digit_timeout_s, cfg.pin_timeout_s
        )
        self._pending: Pending | None = None
        self.vend_session = vend_session and mode == "vending"
        self._matched: MatchResult | None = None  # SELECT: who, until the price comes
        # the match asked before liveness ended, and its answer, for the bound track only
        self._match_asked = False
        self._early: MatchResult | None = None
        # the next customer, seen while the gate is still busy with the one before: their
        # challenge code already plays; bound as soon as the session is idle again
        self._next_track: int | None = None
        self._next_refusal: Reason | None = None

    # ------------------------------------------------------------ read-only views

    @property
    def state(self) -> State:
        return self._state

    @property
    def track_id(self) -> int | None:
        return self._track

    @property
    def tx_id(self) -> str | None:
        return None if self._tx is None else self._tx.record.tx_id

    @property
    def amount(self) -> int | None:
        return self._amount

    @property
    def lockouts(self) -> dict[str, policy.PinLockout]:
        """Wrong-PIN lockouts, for the shell to keep across restarts (plain data)."""
        return dict(self._lockouts)

    @property
    def pinless(self) -> bool:
        """Whether a face alone may pay here (rules permitting): only with the challenge
        light, or where the operator chose PIN-less payment without it."""
        return self.challenge is not None or self.cfg.pinless_without_ring

    # ------------------------------------------------------------ transitions

    def _go(
        self,
        state: State,
        out: list[Effect],
        *,
        deadline: float | None = None,
        reasons: tuple[Reason, ...] = (),
    ) -> None:
        self._state = state
        self._deadline = deadline
        out.append(StateChanged(state.value, reasons))

    def _stop_challenge(self, out: list[Effect]) -> None:
        if self._next_track is not None:
            return  # the cues running now are the next customer's: they go on
        if self._gate.challenge == Challenge.RUNNING:
            out.append(StopChallenge())
        self._gate.reset()

    def _unbind(self) -> None:
        """The attempt's face is let go: nothing learnt about it carries over."""
        self._track, self._good_frames, self._pending, self._matched = None, 0, None, None
        self._match_asked, self._early = False, None

    def _reset(
        self, out: list[Effect], reasons: tuple[Reason, ...] = (), now: float | None = None
    ) -> None:
        self._stop_challenge(out)
        self._unbind()
        self._tx = None
        if self.vend_session:
            self._amount = None  # the price belonged to the machine session that ended
        self._pin.start(0.0)  # drops any typed digits
        self._go(State.IDLE, out, reasons=reasons)
        out.append(SetLeds("idle"))
        if now is not None:  # the cooldown's end: only then can a next customer wait
            self._bind_next(now, out)

    def _bind_next(self, now: float, out: list[Effect]) -> None:
        """Idle again: the next customer, already stepping up, is bound at once."""
        track, refusal = self._next_track, self._next_refusal
        self._next_track, self._next_refusal = None, None
        if track is None:
            return
        self._track, self._good_frames = track, 0
        self._go(State.FACE, out)
        out.append(SetLeds("face"))
        if refusal is not None:  # their code was judged already, and not followed
            self._refuse_live(now, refusal, out)

    def _abort(self, reason: Reason, out: list[Effect], prompt: str | None = None) -> None:
        """End an attempt that has not reached the host: nothing to record."""
        out += [Prompt(prompt or PROMPTS.get(reason, "")), Notify("session_aborted", (reason,))]
        self._reset(out, (reason,))

    def _cooldown(self, now: float, out: list[Effect], seconds: float | None = None) -> None:
        self._stop_challenge(out)
        self._unbind()
        if self.mode == "vending":
            self._amount = None  # the selection belonged to this attempt
        wait = self.cfg.cooldown_s if seconds is None else seconds
        self._go(State.COOLDOWN, out, deadline=now + wait)

    def _decline(self, now: float, reasons: tuple[Reason, ...], out: list[Effect]) -> None:
        self._spent_track = self._track
        self._go(State.DECLINED, out, reasons=reasons)
        out += [SetLeds("declined"), Buzz("error"), Prompt(PROMPTS.get(reasons[-1], "Declined"))]
        self._cooldown(now, out)

    def _refuse_live(self, now: float, reason: Reason, out: list[Effect]) -> None:
        out.append(Notify("liveness_rejected", (reason,)))
        self._decline(now, (reason,), out)

    def _money(self, amount: int) -> str:
        return f"{amount // 100}.{amount % 100:02d} {self.payment.currency}"


PROMPTS: dict[Reason, str] = {
    Reason.FACE_LOST: "Face lost, please look at the camera",
    Reason.CANCELLED: "Cancelled",
    Reason.INTENT_TIMEOUT: "No blink seen, please try again",
    Reason.MATCH_TIMEOUT: "Please try again",
    Reason.PIN_TIMEOUT: "PIN timed out",
    Reason.AMOUNT_CHANGED: "Amount changed, please confirm again",
    Reason.AMOUNT_MISSING: "Choose a product",
    Reason.SELECT_TIMEOUT: "No product chosen",
    Reason.UNKNOWN_FACE: "Not recognised",
    Reason.LIVENESS_FAILED: "Not recognised",
    Reason.REPLAY_SUSPECTED: "Not recognised",
    Reason.CHALLENGE_FAILED: "Not recognised",
    Reason.CHALLENGE_UNAVAILABLE: "Please try again",
    Reason.FACE_SWAPPED: "One person at a time",
    Reason.PIN_LOCKED: "PIN locked, try later",
    Reason.WRONG_PIN: "Wrong PIN",
    Reason.APPROVED_OFFLINE: "Approved",
}
