"""The session's match phase: who the bound face is, and what the payment rules then ask
(decline, the PIN, or straight to the host).

The match is asked early, once the face has been seen well for a few frames, and runs
while liveness is still being judged; its answer is kept for the bound track only (one
for another track, or for a face already let go, is dropped) and used only once liveness
has passed. An early "unknown" is asked again then, on the embeddings of every frame seen
by that time. A terminal without a challenge light asks for the PIN on every face
payment unless the operator chose otherwise (`session.pinless_without_ring`).
"""

from __future__ import annotations

from dataclasses import replace

from device.core import policy
from device.core.events import (
    Effect,
    MatchResult,
    Notify,
    OpenVendSession,
    Prompt,
    RequestMatch,
    SetLeds,
)
from device.core.reasons import Reason
from device.core.session_base import Pending, State
from device.core.session_pin import PinPhase


class MatchPhase(PinPhase):
    def _ask_match(self, out: list[Effect]) -> None:
        """The search for the bound track, once per attempt (the shell answers later)."""
        if self._track is not None and not self._match_asked:
            self._match_asked = True
            out.append(RequestMatch(self._track))

    def _hold_match(self, event: MatchResult) -> None:
        """An answer that came before liveness ended: kept for its own track alone."""
        if event.track_id == self._track and self._match_asked:
            self._early = event

    def _liveness_passed(self, now: float, out: list[Effect]) -> None:
        """Liveness holds: use the early answer at once, or wait for the one asked."""
        assert self._track is not None
        early, self._early = self._early, None
        if early is not None and early.decision.kind == "unknown":
            early, self._match_asked = None, False  # ask again on every frame seen so far
        self._go(State.MATCH, out, deadline=now + self.cfg.match_timeout_s)
        out.append(SetLeds("working"))
        if early is not None:
            self._on_match(replace(early, now=now), out)
        else:
            self._ask_match(out)

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
                    Pending(kind, check.reasons, tokens, score, event.accounts),
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
        reasons = check.reasons
        if not self.pinless:
            reasons = (*reasons, Reason.PIN_NO_RING)  # the face alone is not enough here
        self._pending = Pending(kind, reasons, payable, score, event.accounts)
        if check.pin_required or not self.pinless:
            self._ask_pin(now, reasons, out)
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
