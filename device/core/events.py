"""What the session is told (events) and what it asks the shell to do (effects).

Every event carries `now`: monotonic seconds read by the shell. Effects are executed by
the shell in list order; a ledger write or update always precedes the actuation it
allows (PulseRelay, ApproveVend), and the shell's ledger write is durable before it
returns, so a crash between the two never actuates an unrecorded payment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from device.core.challenge import ChallengeVerdict
from device.core.liveness import LivenessReason
from device.core.policy import Payer
from device.core.reasons import Reason

# ---------------------------------------------------------------- what a match gives us


class MatchLike(Protocol):
    """device.core.match.MatchDecision fits this: kind, the candidate tokens a PIN may
    pick among (best first; one for a clear match) and the best score."""

    @property
    def kind(self) -> str: ...
    @property
    def candidates(self) -> Sequence[str]: ...
    @property
    def score(self) -> float | None: ...


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class FaceSeen:
    """One tracked face in this frame; quality_ok from the vision quality gate."""

    now: float
    track_id: int
    quality_ok: bool = True


@dataclass(frozen=True)
class FaceLost:
    now: float
    track_id: int


@dataclass(frozen=True)
class SecondFace:
    """Another face (not the bound track) is in the capture zone."""

    now: float
    track_id: int


@dataclass(frozen=True)
class BlinkDetected:
    """The liveness scorer saw a blink on this track (device.core.liveness)."""

    now: float
    track_id: int


@dataclass(frozen=True)
class LivenessRejected:
    """A liveness cue refused this track (e.g. a replay), with its reason."""

    now: float
    track_id: int
    reason: LivenessReason


@dataclass(frozen=True)
class PassiveSeen:
    """A fresh passive-cue verdict (real or spoof) on this track; no_verdict is not sent."""

    now: float
    track_id: int
    real: bool


@dataclass(frozen=True)
class ChallengeDone:
    """The illumination challenge on this track is judged (device.core.challenge)."""

    now: float
    track_id: int
    verdict: ChallengeVerdict


@dataclass(frozen=True)
class MatchResult:
    """1:N result for the track's fused embedding, with the store's view of each
    candidate's account (device.core.policy.Payer) keyed by token."""

    now: float
    track_id: int
    decision: MatchLike
    accounts: Mapping[str, Payer] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyPressed:
    now: float
    key: str  # "0".."9", "*" (cancel/clear), "#" (enter)

    def __repr__(self) -> str:  # a digit may be a PIN digit
        shown = self.key if not self.key.isdigit() else "<digit>"
        return f"KeyPressed(now={self.now:.3f}, key={shown!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class AuthResponse:
    """The host's answer. token: the payer the host chose (the PIN picks among
    candidates of an ambiguous match); reason: a Reason value or any host string."""

    now: float
    tx_id: str
    approved: bool
    reason: str = ""
    token: str | None = None


@dataclass(frozen=True)
class AuthUnavailable:
    """The shell knows the host cannot answer (broker down): fall back at once."""

    now: float
    tx_id: str


@dataclass(frozen=True)
class AmountSet:
    """Vending: the controller's amount (minor units); None clears the selection."""

    now: float
    amount: int | None


@dataclass(frozen=True)
class Cancel:
    now: float
    source: str = "user"


@dataclass(frozen=True)
class PassageSeen:
    now: float


@dataclass(frozen=True)
class VendResult:
    now: float
    tx_id: str
    success: bool


@dataclass(frozen=True)
class Tick:
    now: float


Event = (
    FaceSeen
    | FaceLost
    | SecondFace
    | BlinkDetected
    | LivenessRejected
    | PassiveSeen
    | ChallengeDone
    | MatchResult
    | KeyPressed
    | AuthResponse
    | AuthUnavailable
    | AmountSet
    | Cancel
    | PassageSeen
    | VendResult
    | Tick
)

# ---------------------------------------------------------------- effects

LedPattern = Literal["idle", "face", "blink_prompt", "working", "pin", "approved", "declined"]
BuzzPattern = Literal["key", "ok", "error"]
TxStatus = Literal["pending", "approved", "declined", "voided"]


@dataclass(frozen=True)
class TxRecord:
    """A transaction as the ledger stores it (the shell adds wall time and signature)."""

    tx_id: str
    mode: str
    amount: int
    currency: str
    token: str | None
    candidates: tuple[str, ...]
    match_kind: str
    match_score: float
    factors: tuple[str, ...]  # "face", "blink", "pin"
    status: TxStatus
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class SetLeds:
    pattern: LedPattern


@dataclass(frozen=True)
class Buzz:
    pattern: BuzzPattern


@dataclass(frozen=True)
class Prompt:
    text: str


@dataclass(frozen=True)
class RequestMatch:
    """Run the 1:N search on this track's fused embedding; answer with MatchResult."""

    track_id: int


@dataclass(frozen=True)
class WriteLedger:
    record: TxRecord


@dataclass(frozen=True)
class UpdateLedger:
    tx_id: str
    status: TxStatus
    reasons: tuple[Reason, ...]
    offline: bool = False
    token: str | None = None  # the payer, when the host picked one


@dataclass(frozen=True)
class AuthCandidate:
    """Who may pay: an account token, and the PIN block when the customer typed a PIN."""

    token: str
    pin_block: bytes | None = None  # ISO 9564 format 4, enciphered with the PIN key

    def __repr__(self) -> str:
        shown = "None" if self.pin_block is None else "<16 bytes>"
        return f"AuthCandidate(token={self.token!r}, pin_block={shown})"


@dataclass(frozen=True)
class RequestAuthorization:
    tx_id: str
    amount: int
    currency: str
    candidates: tuple[AuthCandidate, ...]  # one for a clear match, more when ambiguous
    match_kind: str

    @property
    def token(self) -> str:
        return self.candidates[0].token

    @property
    def pin_block(self) -> bytes | None:
        return self.candidates[0].pin_block


@dataclass(frozen=True)
class PulseRelay:
    """Open the gate for the paid ride `tx_id` (the shell checks its approved row first)."""

    tx_id: str
    ms: int


@dataclass(frozen=True)
class ApproveVend:
    tx_id: str
    amount: int


@dataclass(frozen=True)
class OpenVendSession:
    """Vending machine (MDB): the customer is known before the selection; offer the machine
    a session with up to `funds` (host reachable) or `offline_funds` (host unreachable)."""

    funds: int
    offline_funds: int


@dataclass(frozen=True)
class VoidTransaction:
    """Tell the host to reverse an approved or pending payment (no ride, no vend)."""

    tx_id: str
    reason: Reason


@dataclass(frozen=True)
class Notify:
    """Something to count or publish on `events` (no biometrics, no PIN)."""

    kind: str
    reasons: tuple[Reason, ...] = ()
    tx_id: str | None = None


@dataclass(frozen=True)
class StartChallenge:
    """Play this code on the challenge light from now, one bit per bit_ms, and judge the
    bound track's reflected light against it (the shell answers with ChallengeDone)."""

    track_id: int
    code: tuple[bool, ...]
    bit_ms: int


@dataclass(frozen=True)
class StopChallenge:
    """The attempt ended: the challenge light goes off, any result is dropped."""


@dataclass(frozen=True)
class StateChanged:
    state: str
    reasons: tuple[Reason, ...] = ()


Effect = (
    SetLeds
    | Buzz
    | Prompt
    | RequestMatch
    | WriteLedger
    | UpdateLedger
    | RequestAuthorization
    | PulseRelay
    | ApproveVend
    | OpenVendSession
    | VoidTransaction
    | Notify
    | StateChanged
    | StartChallenge
    | StopChallenge
)
ACTUATIONS = (PulseRelay, ApproveVend)
