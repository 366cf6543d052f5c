"""The session's last phase: an approved payment opens the gate or vends, and what follows
(the customer walks through, the product comes out, or the payment is voided).

The approval's ledger update always comes first among the effects: the shell makes it
durable before it actuates (device/shell/effects.py refuses a pulse without it).
"""

from __future__ import annotations

from device.core.events import (
    ApproveVend,
    Buzz,
    Effect,
    Notify,
    Prompt,
    PulseRelay,
    SetLeds,
    UpdateLedger,
    VoidTransaction,
)
from device.core.reasons import Reason
from device.core.session_base import SessionBase, State


class ActuationPhase(SessionBase):
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

    def _on_passage(self, now: float, out: list[Effect]) -> None:
        if self._state == State.ACTUATE and self.mode == "turnstile":
            out.append(Notify("passage", tx_id=self.tx_id))
            # the customer is through: the gate is clear for the next one (the face that
            # paid stays spent until it leaves the view)
            self._cooldown(now, out, self.cfg.passage_cooldown_s)

    def _on_vend_result(self, now: float, tx_id: str, success: bool, out: list[Effect]) -> None:
        if self._state == State.ACTUATE and tx_id == self.tx_id:
            if success:
                out.append(Notify("vended", tx_id=tx_id))
                self._cooldown(now, out)
            else:
                self._void(now, Reason.VEND_FAILED, out)

    def _actuation_timeout(self, now: float, out: list[Effect]) -> None:
        turnstile = self.mode == "turnstile"
        self._void(now, Reason.PASSAGE_TIMEOUT if turnstile else Reason.VEND_TIMEOUT, out)
