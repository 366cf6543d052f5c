"""Fusion of the liveness cues for one attempt, pure: when may the session go on to match?

A payment needs all of:
- the blink inside the intent window: the customer's intent (and no photo blinks);
- the passive cue (MiniFASNet) over the bound track's frames: a strict majority of its
  real/spoof verdicts must say real. A track with no verdict at all (the cue disabled,
  only weak detections) is refused by it only when `passive_required` is set;
- where the terminal has a challenge light, the illumination challenge passed.
Each refusal names its reason. The gate only keeps counts and flags; the session asks it
after every cue's news.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from device.core.challenge import ChallengeReason, ChallengeVerdict
from device.core.reasons import Reason


class Challenge(StrEnum):
    OFF = "off"  # no challenge light on this terminal
    RUNNING = "running"
    PASSED = "passed"


@dataclass(frozen=True)
class GateDecision:
    """ "wait" (a cue has not spoken yet), "go" (match now) or "refuse" with its reason."""

    outcome: str
    reason: Reason | None = None


WAIT = GateDecision("wait")
GO = GateDecision("go")


@dataclass
class PassiveTally:
    real: int = 0
    spoof: int = 0

    def add(self, is_real: bool) -> None:
        if is_real:
            self.real += 1
        else:
            self.spoof += 1

    def refuses(self, required: bool) -> bool:
        """A tie refuses: the cue's own word must lean to real."""
        if self.real + self.spoof == 0:
            return required
        return self.real <= self.spoof


def challenge_refusal(verdict: ChallengeVerdict) -> Reason:
    """Why a challenge that did not pass refuses: it failed, or it could not be run."""
    if verdict.reason == ChallengeReason.NOT_FOLLOWED:
        return Reason.CHALLENGE_FAILED
    return Reason.CHALLENGE_UNAVAILABLE


class LivenessGate:
    def __init__(self, passive_required: bool) -> None:
        self.passive_required = passive_required
        self.passive = PassiveTally()
        self.blinked = False
        self.challenge = Challenge.OFF

    def reset(self) -> None:
        self.passive, self.blinked, self.challenge = PassiveTally(), False, Challenge.OFF

    def decide(self) -> GateDecision:
        """After the blink (and the challenge where it runs): the passive cue has its say."""
        if not self.blinked or self.challenge == Challenge.RUNNING:
            return WAIT
        if self.passive.refuses(self.passive_required):
            return GateDecision("refuse", Reason.REPLAY_SUSPECTED)
        return GO

    def on_challenge(self, verdict: ChallengeVerdict) -> GateDecision:
        if self.challenge != Challenge.RUNNING:
            return WAIT  # a stale result (an earlier attempt's) says nothing
        if not verdict.passed:
            self.challenge = Challenge.OFF  # judged: the shell has stopped the light
            return GateDecision("refuse", challenge_refusal(verdict))
        self.challenge = Challenge.PASSED
        return self.decide()

    def on_window_end(self) -> Reason:
        """The intent window closed undecided: which cue was missing."""
        if self.blinked and self.challenge == Challenge.RUNNING:
            return Reason.CHALLENGE_UNAVAILABLE  # no challenge result came in time
        return Reason.INTENT_TIMEOUT
