"""The session's authorization phase: the pending ledger row, the host's question, its
answer, and the offline rules when the host is silent or unreachable.

The pending row is written before the question goes out (the shell refuses to ask for a
transaction without it); an answer counts only for the transaction asked about.
"""

from __future__ import annotations

from device.core import policy
from device.core.events import (
    AuthCandidate,
    AuthResponse,
    Effect,
    Notify,
    RequestAuthorization,
    SetLeds,
    TxRecord,
    TxStatus,
    UpdateLedger,
    WriteLedger,
)
from device.core.pin_entry import SecretPin
from device.core.reasons import Reason, host_reason
from device.core.session_actuation import ActuationPhase
from device.core.session_base import Pending, State, Tx


class AuthorizationPhase(ActuationPhase):
    def _record(
        self, pending: Pending, status: TxStatus, pin_used: bool, out: list[Effect]
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
        self._tx = Tx(record, pin_used, pending.accounts)
        out.append(WriteLedger(record))
        return record

    def _authorize(
        self, now: float, pending: Pending, pin: SecretPin | None, out: list[Effect]
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
