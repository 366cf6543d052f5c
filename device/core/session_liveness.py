"""The session's liveness phase: a face is bound, prompted, and proven live.

The cues run side by side from the moment a face is bound (FACE): the illumination
challenge's code starts then, while the customer is still stepping up (where the amount
is known; else at the prompt), the passive verdicts are tallied from then, the prompt
follows a few good frames, the match is asked with it, and the blink is the customer's
intent. The liveness gate (device/core/liveness_gate.py) says when all cues hold; a cue
that refuses ends the attempt with its reason.
"""

from __future__ import annotations

from device.core.challenge import first_look, make_code
from device.core.events import (
    ChallengeDone,
    Effect,
    FaceSeen,
    Prompt,
    SetLeds,
    StartChallenge,
    StopChallenge,
)
from device.core.liveness_gate import Challenge, GateDecision
from device.core.reasons import Reason
from device.core.session_base import State
from device.core.session_match import MatchPhase


class LivenessPhase(MatchPhase):
    def _on_face(self, event: FaceSeen, out: list[Effect]) -> None:
        if self._state in (State.ACTUATE, State.COOLDOWN):
            self._maybe_next(event, out)
            return
        if self._state == State.IDLE:
            if event.quality_ok and event.track_id != self._spent_track:
                self._track, self._good_frames = event.track_id, 0
                self._go(State.FACE, out)
                out.append(SetLeds("face"))
                if self._amount is not None or self.vend_session:
                    self._start_challenge(out)  # the code plays while they step up
            else:
                return
        if self._state != State.FACE or event.track_id != self._track:
            return
        self._good_frames = self._good_frames + 1 if event.quality_ok else 0
        self._maybe_prompt(event.now, out)

    def _maybe_next(self, event: FaceSeen, out: list[Effect]) -> None:
        """The gate is still busy with the customer before (walking through, or the
        result on show): the next one's challenge code starts as they step up, and the
        session binds them the moment it is idle (a turnstile with a challenge light)."""
        if (
            self.mode != "turnstile"
            or self.challenge is None
            or self._next_track is not None
            or not event.quality_ok
            or event.track_id in (self._spent_track, self._track)
            or self._gate.challenge != Challenge.OFF
        ):
            return
        self._gate.reset()  # the attempt before has been judged: nothing of it carries over
        self._next_track = event.track_id
        self._start_challenge(out, event.track_id)

    def _drop_next(self, out: list[Effect]) -> None:
        """The next customer left before being bound: their code stops."""
        if self._gate.challenge == Challenge.RUNNING:
            out.append(StopChallenge())
        self._gate.reset()
        self._next_track, self._next_refusal = None, None

    def _start_challenge(self, out: list[Effect], track: int | None = None) -> None:
        """A fresh random code for the bound (or next) track, once per attempt."""
        cfg, track = self.challenge, self._track if track is None else track
        if cfg is None or track is None or self._gate.challenge != Challenge.OFF:
            return
        assert self._randbelow is not None
        code = make_code(cfg.code_bits, self._randbelow, first_look(cfg))
        self._gate.challenge = Challenge.RUNNING
        out.append(StartChallenge(track, code, cfg.bit_ms))

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
        self._start_challenge(out)
        self._ask_match(out)  # a few good frames: the search runs while liveness is judged

    def _on_blink(self, now: float, track: int, out: list[Effect]) -> None:
        if self._state == State.INTENT and track == self._track:
            self._gate.blinked = True
            self._on_gate(now, self._gate.decide(), out)

    def _on_passive(self, track: int, real: bool) -> None:
        bound = self._state in (State.FACE, State.INTENT) and track == self._track
        if bound or (self._next_track is not None and track == self._next_track):
            self._gate.passive.add(real)

    def _on_challenge(self, event: ChallengeDone, out: list[Effect]) -> None:
        if self._next_track is not None and event.track_id == self._next_track:
            decision = self._gate.on_challenge(event.verdict)  # kept until they are bound
            if decision.outcome == "refuse":
                self._next_refusal = decision.reason
        elif self._state in (State.FACE, State.INTENT) and event.track_id == self._track:
            self._on_gate(event.now, self._gate.on_challenge(event.verdict), out)

    def _on_gate(self, now: float, decision: GateDecision, out: list[Effect]) -> None:
        """The liveness gate's word after a cue's news: wait, match, or refuse."""
        if decision.outcome == "go" and self._track is not None:
            self._gate.challenge = Challenge.OFF  # judged: nothing left to stop
            self._liveness_passed(now, out)
        elif decision.outcome == "refuse" and decision.reason is not None:
            self._refuse_live(now, decision.reason, out)
        elif self._gate.blinked:  # the intent is given; the challenge light still plays
            out.append(Prompt("Hold still"))

    def _intent_timeout(self, now: float, out: list[Effect]) -> None:
        reason = self._gate.on_window_end()
        if reason == Reason.INTENT_TIMEOUT:
            self._abort(reason, out)
        else:  # blinked, but the challenge never answered: refused, not retried
            self._refuse_live(now, reason, out)
