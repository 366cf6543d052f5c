"""The payment session: a pure state machine from events to effects.

IDLE -> FACE -> INTENT -> MATCH -> [PIN] -> AUTHORIZE -> APPROVED | DECLINED -> ACTUATE
-> COOLDOWN -> IDLE. The shell feeds every event with the monotonic `now` it read (Tick
events at a few Hz drive the timeouts) and executes the returned effects in order. The
session is bound to one tracked face from FACE to MATCH: a blink or a match result from
any other track never counts. PIN digits stay in the PinEntry holder and leave only as
enciphered ISO 9564 format 4 blocks (the injected `encrypt_pin`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from device.core import policy
from device.core.challenge import RandBelow, make_code
from device.core.config import ChallengeConfig, PaymentConfig, SessionConfig
from device.core.events import (
    AmountSet,
    ApproveVend,
    AuthCandidate,
    AuthResponse,
    AuthUnavailable,
    BlinkDetected,
    Buzz,
    Cancel,
    ChallengeDone,
    Effect,
    Event,
    FaceLost,
    FaceSeen,
    KeyPressed,
    LivenessRejected,
    MatchResult,
    Notify,
    OpenVendSession,
    PassageSeen,
    PassiveSeen,
    Prompt,
    PulseRelay,
    RequestAuthorization,
    RequestMatch,
    SecondFace,
    SetLeds,
    StartChallenge,
    StateChanged,
    StopChallenge,
    Tick,
    TxRecord,
    TxStatus,
    UpdateLedger,
    VendResult,
    VoidTransaction,
    WriteLedger,
)
from device.core.liveness_gate import Challenge, GateDecision, LivenessGate
from device.core.pin_entry import CANCEL_KEY, PinEntry, SecretPin
from device.core.reasons import Reason, host_reason

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
_FACE_BOUND = (State.FACE, State.INTENT, State.MATCH)


@dataclass(frozen=True)
class _Pending:
    """A matched attempt waiting for the PIN or the host: who may pay and why."""

    kind: str
    reasons: tuple[Reason, ...]
    tokens: tuple[str, ...]  # payable candidates, best first
    score: float
    accounts: Mapping[str, policy.Payer]


@dataclass
class _Tx:
    record: TxRecord
    pin_used: bool
    accounts: Mapping[str, policy.Payer]


class Session:
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
        self._tx: _Tx | None = None
        self._pin = PinEntry(
            cfg.pin_min_len, cfg.pin_max_len, cfg.pin_digit_timeout_s, cfg.pin_timeout_s
        )
        self._pending: _Pending | None = None
        self.vend_session = vend_session and mode == "vending"
        self._matched: MatchResult | None = None  # SELECT: who, until the price comes

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

    # ------------------------------------------------------------ the one entry point

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
                if track == self._track and self._state in _FACE_BOUND:
                    self._abort(Reason.FACE_LOST, out)
            case SecondFace():
                if self._state in _FACE_BOUND and event.track_id != self._track:
                    self._abort(Reason.SECOND_FACE, out, prompt="One person at a time")
            case BlinkDetected(track_id=track, now=now):
                if self._state == State.INTENT and track == self._track:
                    self._gate.blinked = True
                    self._on_gate(now, self._gate.decide(), out)
            case PassiveSeen(track_id=track, real=real):
                if self._state in (State.FACE, State.INTENT) and track == self._track:
                    self._gate.passive.add(real)
            case ChallengeDone(track_id=track, now=now):
                if self._state == State.INTENT and track == self._track:
                    self._on_gate(now, self._gate.on_challenge(event.verdict), out)
            case LivenessRejected(track_id=track, now=now):
                if self._state in _FACE_BOUND and track == self._track:
                    self._refuse_live(now, Reason.LIVENESS_FAILED, out)
            case MatchResult():
                if self._state == State.MATCH:
                    self._on_match(event, out)
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
            case PassageSeen():
                if self._state == State.ACTUATE and self.mode == "turnstile":
                    out.append(Notify("passage", tx_id=self.tx_id))
                    self._cooldown(event.now, out)
            case VendResult(tx_id=tx_id, success=success, now=now):
                if self._state == State.ACTUATE and tx_id == self.tx_id:
                    if success:
                        out.append(Notify("vended", tx_id=tx_id))
                        self._cooldown(now, out)
                    else:
                        self._void(now, Reason.VEND_FAILED, out)
        return out

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
        if self._gate.challenge == Challenge.RUNNING:
            out.append(StopChallenge())
        self._gate.reset()

    def _reset(self, out: list[Effect], reasons: tuple[Reason, ...] = ()) -> None:
        self._stop_challenge(out)
        self._track, self._good_frames, self._tx, self._pending = None, 0, None, None
        self._matched = None
        if self.vend_session:
            self._amount = None  # the price belonged to the machine session that ended
        self._pin.start(0.0)  # drops any typed digits
        self._go(State.IDLE, out, reasons=reasons)
        out.append(SetLeds("idle"))

    def _abort(self, reason: Reason, out: list[Effect], prompt: str | None = None) -> None:
        """End an attempt that has not reached the host: nothing to record."""
        out += [Prompt(prompt or _PROMPTS.get(reason, "")), Notify("session_aborted", (reason,))]
        self._reset(out, (reason,))

    def _cooldown(self, now: float, out: list[Effect]) -> None:
        self._stop_challenge(out)
        self._track, self._good_frames, self._pending, self._matched = None, 0, None, None
        if self.mode == "vending":
            self._amount = None  # the selection belonged to this attempt
        self._go(State.COOLDOWN, out, deadline=now + self.cfg.cooldown_s)

    def _decline(self, now: float, reasons: tuple[Reason, ...], out: list[Effect]) -> None:
        self._spent_track = self._track
        self._go(State.DECLINED, out, reasons=reasons)
        out += [SetLeds("declined"), Buzz("error"), Prompt(_PROMPTS.get(reasons[-1], "Declined"))]
        self._cooldown(now, out)

    # ------------------------------------------------------------ event handlers

    def _on_tick(self, now: float, out: list[Effect]) -> None:
        if self._state == State.PIN:
            if self._pin.tick(now).feedback == "timed_out":
                self._abort(Reason.PIN_TIMEOUT, out)
            return
        if self._deadline is None or now < self._deadline:
            return
        match self._state:
            case State.INTENT:
                reason = self._gate.on_window_end()
                if reason == Reason.INTENT_TIMEOUT:
                    self._abort(reason, out)
                else:  # blinked, but the challenge never answered: refused, not retried
                    self._refuse_live(now, reason, out)
            case State.MATCH:
                self._abort(Reason.MATCH_TIMEOUT, out)
            case State.SELECT:
                self._abort(Reason.SELECT_TIMEOUT, out)
            case State.AUTHORIZE:
                self._offline(now, Reason.AUTH_TIMEOUT, out)
            case State.ACTUATE:
                turnstile = self.mode == "turnstile"
                self._void(now, Reason.PASSAGE_TIMEOUT if turnstile else Reason.VEND_TIMEOUT, out)
            case State.COOLDOWN:
                self._reset(out)

    def _on_face(self, event: FaceSeen, out: list[Effect]) -> None:
        if self._state == State.IDLE:
            if event.quality_ok and event.track_id != self._spent_track:
                self._track, self._good_frames = event.track_id, 0
                self._go(State.FACE, out)
                out.append(SetLeds("face"))
            else:
                return
        if self._state != State.FACE or event.track_id != self._track:
            return
        self._good_frames = self._good_frames + 1 if event.quality_ok else 0
        self._maybe_prompt(event.now, out)

    def _maybe_prompt(self, now: float, out: list[Effect]) -> None:
        if self._state != State.FACE or self._good_frames < self.cfg.face_frames:
            return
        if self._amount is None and not self.vend_session:
            out.append(Prompt("Choose a product"))
            return
        self._go(State.INTENT, out, deadline=now + self.cfg.intent_timeout_s)
        # MDB: the price comes once the machine's session is open (SELECT), after the blink
        text = "at the machine" if self._amount is None else self._money(self._amount)
        out += [SetLeds("blink_prompt"), Prompt(f"Blink to pay {text}")]
        if self.challenge is not None and self._track is not None:
            assert self._randbelow is not None
            code = make_code(self.challenge.code_bits, self._randbelow)
            self._gate.challenge = Challenge.RUNNING
            out.append(StartChallenge(self._track, code, self.challenge.bit_ms))

    def _on_gate(self, now: float, decision: GateDecision, out: list[Effect]) -> None:
        """The liveness gate's word after a cue's news: wait, match, or refuse."""
        if decision.outcome == "go" and self._track is not None:
            self._gate.challenge = Challenge.OFF  # judged: nothing left to stop
            self._go(State.MATCH, out, deadline=now + self.cfg.match_timeout_s)
            out += [SetLeds("working"), RequestMatch(self._track)]
        elif decision.outcome == "refuse" and decision.reason is not None:
            self._refuse_live(now, decision.reason, out)
        elif self._gate.blinked:  # the intent is given; the challenge light still plays
            out.append(Prompt("Hold still"))

    def _refuse_live(self, now: float, reason: Reason, out: list[Effect]) -> None:
        out.append(Notify("liveness_rejected", (reason,)))
        self._decline(now, (reason,), out)

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

    def _on_cancel(self, now: float, out: list[Effect]) -> None:
        if self._state in (*_FACE_BOUND, State.PIN, State.SELECT):
            self._abort(Reason.CANCELLED, out)
        elif self._state == State.AUTHORIZE:
            self._void(now, Reason.CANCELLED, out)
        elif self._state == State.IDLE and self.mode == "vending":
            self._amount = None

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

    def _on_match(self, event: MatchResult, out: list[Effect]) -> None:
        if event.track_id != self._track:
            out.append(Notify("face_swapped", (Reason.FACE_SWAPPED,)))
            self._decline(event.now, (Reason.FACE_SWAPPED,), out)
            return
        decision = event.decision
        kind = decision.kind if decision.kind in ("match", "ambiguous") else "unknown"
        tokens = tuple(decision.candidates)
        tokens = tokens[:1] if kind == "match" else tokens
        score = float(decision.score or 0.0)
        selecting = self._amount is None and self.vend_session
        # Before the selection the rules run on the smallest amount: who may pay at all.
        now, amount = event.now, 1 if selecting else self._amount
        check = policy.precheck(
            amount, kind, tokens, event.accounts, self._lockouts, now, self.payment
        )
        if check.outcome == "decline":
            if check.reasons == (Reason.UNKNOWN_FACE,):
                out.append(Notify("unknown_face", check.reasons))
            else:  # a known user refused by a rule: on the record
                self._record(
                    _Pending(kind, check.reasons, tokens, score, event.accounts),
                    "declined",
                    False,
                    out,
                )
            self._decline(now, check.reasons, out)
            return
        if selecting:
            self._select(event, tokens, out)
            return
        payable = policy.payable_tokens(
            amount or 0, tokens, event.accounts, self._lockouts, now, self.payment
        )
        self._pending = _Pending(kind, check.reasons, payable, score, event.accounts)
        if check.pin_required:
            self._pin.start(now)
            self._go(State.PIN, out, reasons=check.reasons)
            out += [SetLeds("pin"), Prompt("Enter PIN, then #")]
        else:
            self._authorize(now, self._pending, None, out)

    def _select(self, event: MatchResult, tokens: tuple[str, ...], out: list[Effect]) -> None:
        """Vending over MDB: open the machine's session with what the rules allow this
        customer (the shell picks the offline figure when the host is unreachable)."""
        payable = policy.payable_tokens(
            1, tokens, event.accounts, self._lockouts, event.now, self.payment
        )
        funds = policy.vend_funds(payable, event.accounts, self.payment)
        self._matched = event
        self._spent_track = self._track  # the attempt is spent: a new one needs a new blink
        self._go(State.SELECT, out, deadline=event.now + self.cfg.select_timeout_s)
        out += [
            SetLeds("face"),
            Prompt(f"Choose a product, up to {self._money(funds.online)}"),
            OpenVendSession(funds.online, funds.offline),
        ]

    def _record(
        self, pending: _Pending, status: TxStatus, pin_used: bool, out: list[Effect]
    ) -> TxRecord:
        tokens = pending.tokens
        record = TxRecord(
            tx_id=self._new_tx_id(),
            mode=self.mode,
            amount=self._amount or 0,
            currency=self.payment.currency,
            token=tokens[0] if len(tokens) == 1 else None,
            candidates=tokens,
            match_kind=pending.kind,
            match_score=pending.score,
            factors=("face", "blink", "pin") if pin_used else ("face", "blink"),
            status=status,
            reasons=pending.reasons,
        )
        self._tx = _Tx(record, pin_used, pending.accounts)
        out.append(WriteLedger(record))
        return record

    def _authorize(
        self, now: float, pending: _Pending, pin: SecretPin | None, out: list[Effect]
    ) -> None:
        record = self._record(pending, "pending", pin is not None, out)
        candidates = tuple(
            AuthCandidate(t, None if pin is None else self._encrypt_pin(pin, t))
            for t in pending.tokens
        )
        self._go(State.AUTHORIZE, out, deadline=now + self.auth_timeout_s, reasons=pending.reasons)
        out += [
            SetLeds("working"),
            RequestAuthorization(
                record.tx_id, record.amount, record.currency, candidates, pending.kind
            ),
        ]

    def _on_auth(self, event: AuthResponse, out: list[Effect]) -> None:
        tx = self._tx
        if self._state != State.AUTHORIZE or tx is None or event.tx_id != tx.record.tx_id:
            out.append(Notify("auth_response_ignored", tx_id=event.tx_id))
            return
        candidates = tx.record.candidates
        payer = (
            event.token
            if event.token in candidates
            else (candidates[0] if len(candidates) == 1 else None)
        )
        if event.approved and payer is not None:
            if tx.pin_used:
                self._lockouts = policy.record_pin_ok(self._lockouts, payer)
            self._approve(event.now, (Reason.APPROVED_ONLINE,), False, payer, out)
            return
        reason = host_reason(event.reason) if not event.approved else Reason.HOST_DECLINED
        if reason == Reason.WRONG_PIN:
            self._lockouts = policy.record_wrong_pin(
                self._lockouts, candidates, event.now, self.payment
            )
        out.append(UpdateLedger(tx.record.tx_id, "declined", (reason,)))
        self._decline(event.now, (reason,), out)

    def _offline(self, now: float, cause: Reason, out: list[Effect]) -> None:
        tx = self._tx
        assert tx is not None
        record = tx.record
        payer = record.candidates[0] if len(record.candidates) == 1 else None
        account = None if payer is None else tx.accounts.get(payer)
        verdict = policy.offline_verdict(record.amount, tx.pin_used, account, self.payment)
        reasons = (cause, *verdict.reasons[1:])
        out.append(Notify("auth_fallback", reasons, record.tx_id))
        if verdict.approved:
            self._approve(now, reasons, True, payer, out)
        else:
            out.append(UpdateLedger(record.tx_id, "declined", reasons, offline=True))
            self._decline(now, reasons, out)

    def _approve(
        self,
        now: float,
        reasons: tuple[Reason, ...],
        offline: bool,
        payer: str | None,
        out: list[Effect],
    ) -> None:
        tx = self._tx
        assert tx is not None
        # The ledger update goes first: the shell makes it durable before actuating.
        out.append(UpdateLedger(tx.record.tx_id, "approved", reasons, offline, payer))
        self._spent_track = self._track
        self._go(State.APPROVED, out, reasons=reasons)
        out += [SetLeds("approved"), Buzz("ok"), Prompt("Approved")]
        if self.mode == "vending":
            self._go(State.ACTUATE, out, deadline=now + self.cfg.vend_timeout_s)
            out.append(ApproveVend(tx.record.tx_id, tx.record.amount))
        elif self.passage_timeout_s is not None:
            self._go(State.ACTUATE, out, deadline=now + self.passage_timeout_s)
            out.append(PulseRelay(tx.record.tx_id, self.relay_pulse_ms))
        else:
            self._go(State.ACTUATE, out)
            out.append(PulseRelay(tx.record.tx_id, self.relay_pulse_ms))
            self._cooldown(now, out)

    def _void(self, now: float, reason: Reason, out: list[Effect]) -> None:
        tx = self._tx
        assert tx is not None
        out += [
            UpdateLedger(tx.record.tx_id, "voided", (reason,)),
            VoidTransaction(tx.record.tx_id, reason),
            Notify("voided", (reason,), tx.record.tx_id),
        ]
        self._decline(now, (reason,), out)

    def _money(self, amount: int) -> str:
        return f"{amount // 100}.{amount % 100:02d} {self.payment.currency}"


_PROMPTS: dict[Reason, str] = {
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
