"""Session harness: a simulated clock, a counting tx-id factory and a real PIN encryptor."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from device.core import events as ev
from device.core.config import ChallengeConfig, PaymentConfig, SessionConfig
from device.core.match import MatchDecision
from device.core.pin_entry import SecretPin
from device.core.policy import Payer
from device.core.session import Mode, Session
from device.crypto.pinblock import encipher_pin_block, pan_for_token

PIN_KEY = bytes(range(16))


def match(*tokens: str, kind: str | None = None) -> MatchDecision:
    """A MatchDecision as device.core.match.decide() returns it."""
    kind = kind or ("unknown" if not tokens else "match" if len(tokens) == 1 else "ambiguous")
    if kind == "unknown":
        return MatchDecision("unknown", None, 0.4, None, (), "below_threshold")
    runner = 0.94 if len(tokens) > 1 else 0.7
    return MatchDecision(kind, tokens[0], 0.95, runner, tuple(tokens), "test")


def encrypt_pin(pin: SecretPin, token: str) -> bytes:
    # fixed fill so tests are reproducible; the terminal passes os.urandom
    return encipher_pin_block(PIN_KEY, pin.reveal(), pan_for_token(token), b"\x11" * 8)


@dataclass
class Harness:
    session: Session
    now: float = 100.0
    track: int = 1
    effects: list[ev.Effect] = field(default_factory=list)

    def send(self, event_type: type, *args: object, **kwargs: object) -> list[ev.Effect]:
        out = self.session.handle(event_type(self.now, *args, **kwargs))
        self.effects += out
        return out

    def advance(self, seconds: float) -> list[ev.Effect]:
        self.now += seconds
        return self.send(ev.Tick)

    def of(self, kind: type, effects: Iterable[ev.Effect] | None = None) -> list:
        return [e for e in (self.effects if effects is None else effects) if isinstance(e, kind)]

    @property
    def state(self) -> str:
        return self.session.state.value

    def assert_ledger_before_actuation(self) -> None:
        """Every actuation comes after an approved ledger update of the same transaction."""
        approved: set[str] = set()
        for effect in self.effects:
            if isinstance(effect, ev.UpdateLedger) and effect.status == "approved":
                approved.add(effect.tx_id)
            if isinstance(effect, ev.ApproveVend):
                assert effect.tx_id in approved
            if isinstance(effect, ev.PulseRelay):
                assert approved

    # common walks
    def to_intent(self, track: int = 1) -> None:
        for _ in range(self.session.cfg.face_frames):
            self.send(ev.FaceSeen, track, True)
            self.now += 0.07

    def to_match(self, track: int = 1) -> None:
        self.to_intent(track)
        self.send(ev.BlinkDetected, track)

    @staticmethod
    def decision(*tokens: str, kind: str | None = None) -> MatchDecision:
        return match(*tokens, kind=kind)

    def match_with(
        self, decision: MatchDecision, accounts: dict | None = None, track: int = 1
    ) -> list:
        if accounts is None:
            accounts = {t: Payer(t, offline_allowance_left=1000) for t in decision.candidates}
        return self.send(ev.MatchResult, track, decision, accounts)

    def type_pin(self, digits: str) -> None:
        for d in digits:
            self.send(ev.KeyPressed, d)
            self.now += 0.3
        self.send(ev.KeyPressed, "#")


def make_session(
    mode: Mode = "turnstile",
    passage: float | None = 8.0,
    lockouts: dict | None = None,
    *,
    session: SessionConfig | None = None,
    challenge: bool = False,
    **payment: object,
) -> Session:
    """A session with the test's settings; `challenge`: a ring plays the code (its bits
    drawn from a seeded generator)."""
    counter, rng = itertools.count(1), random.Random(3)
    return Session(
        session or SessionConfig(pinless_without_ring=True),  # the operator chose it: no ring
        PaymentConfig(**payment),
        mode,
        new_tx_id=lambda: f"tx-{next(counter)}",
        encrypt_pin=encrypt_pin,
        auth_timeout_s=2.5,
        relay_pulse_ms=300,
        passage_timeout_s=passage,
        lockouts=lockouts,
        challenge=ChallengeConfig() if challenge else None,
        randbelow=lambda n: rng.randrange(n),
    )


@pytest.fixture
def make_harness():
    def make(
        mode: Mode = "turnstile",
        passage: float | None = 8.0,
        lockouts: dict | None = None,
        **payment: object,
    ) -> Harness:
        return Harness(make_session(mode, passage, lockouts, **payment))

    return make


@pytest.fixture
def turnstile() -> Harness:
    return Harness(make_session("turnstile"))


@pytest.fixture
def vending() -> Harness:
    return Harness(make_session("vending"))
