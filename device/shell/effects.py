"""Carries out the session's effects on the adapters: LEDs, buzzer, relay, ledger, host.

Effects run in the order the session returned them. A ledger write is durable before
this returns (device.store.ledger fsyncs). Money and the gate are guarded by the ledger's
committed state, whatever batch an effect comes in:
- an authorization is asked only for a transaction whose pending row is committed;
- the relay pulses, and a vend is approved, only for a transaction whose approved row is
  committed;
- a ledger write that fails puts the terminal out of service (`on_storage_fault`) until the
  shell finds the storage working again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Protocol

from device.clock import Clock
from device.core.events import (
    ApproveVend,
    Buzz,
    Effect,
    Notify,
    OpenVendSession,
    Prompt,
    PulseRelay,
    RequestAuthorization,
    RequestMatch,
    SetLeds,
    StateChanged,
    TxStatus,
    UpdateLedger,
    VoidTransaction,
    WriteLedger,
)
from device.core.ports import LedgerPort
from device.hw.devices import Hardware

log = logging.getLogger("blinkpay.effects")

# The session's LED names -> the LED board's indications (device.hw.outputs.INDICATIONS).
LED_INDICATION = {"face": "look"}


class HostPort(Protocol):
    """The payment host as the executor sees it (device.net, or nothing when MQTT is off)."""

    def request_authorization(self, request: RequestAuthorization, now: float) -> None: ...
    def void(self, tx_id: str, reason: str) -> None: ...
    def publish_event(self, kind: str, fields: dict[str, Any]) -> None: ...
    def ledger_changed(self) -> None: ...


def created_at(wall_time: float) -> str:
    """A transaction's created_at: ISO-8601 UTC to the millisecond (sorts as text)."""
    return datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="milliseconds")


Observer = Callable[[str, dict[str, Any]], None]  # (what, details): the demo narrates these


class EffectExecutor:
    def __init__(
        self,
        hardware: Hardware,
        ledger: LedgerPort,
        clock: Clock,
        *,
        device_id: str,
        sign: Callable[[dict[str, Any]], str],
        match: Callable[[RequestMatch], None],
        host: HostPort | None,
        on_no_host: Callable[[RequestAuthorization], None],
        observer: Observer | None = None,
        on_storage_fault: Callable[[str], None] | None = None,
        vend: Callable[[ApproveVend, float], None] | None = None,
    ) -> None:
        """vend: the vending controller's approval (device/shell/vending.py), called only
        where the relay would be pulsed: after the approval's ledger row."""
        self.hw, self.ledger, self.clock = hardware, ledger, clock
        self.vend = vend
        self.device_id, self.sign = device_id, sign
        self.match, self.host, self.on_no_host = match, host, on_no_host
        self.observer = observer
        self.on_storage_fault = on_storage_fault
        self.counters: dict[str, int] = {}
        self.vends: list[tuple[str, int]] = []  # simulated vending controller: approved vends

    def _ledger_changed(self) -> None:
        if self.host is not None:
            self.host.ledger_changed()

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _observe(self, what: str, **details: Any) -> None:
        if self.observer is not None:
            self.observer(what, details)

    def run(self, effects: list[Effect], now: float) -> None:
        for effect in effects:
            try:
                refusal = self._guard(effect)
                if refusal is not None:
                    log.error(
                        refusal,
                        extra={"event": "effect_refused", "effect": type(effect).__name__},
                    )
                    self._count("actuation_skipped" if refusal.startswith("no") else "refused")
                    continue
                self._one(effect, now)
            except Exception as exc:
                # One failed effect is logged and counted; the terminal keeps running.
                log.exception(
                    "effect failed",
                    extra={"event": "effect_failed", "effect": type(effect).__name__},
                )
                self._count("effect_failed")
                if isinstance(effect, WriteLedger | UpdateLedger):
                    self._storage_fault(f"{type(effect).__name__}: {exc}")
                self._observe("error", effect=type(effect).__name__, error=str(exc))

    def _guard(self, effect: Effect) -> str | None:
        """Why an effect may not run now (None: it may): the ledger's committed rows decide."""
        if isinstance(effect, PulseRelay | ApproveVend):
            row = self.ledger.get(effect.tx_id)
            if row is None or row.status != "approved":
                return "no committed approved row: actuation skipped"
        elif isinstance(effect, RequestAuthorization) and self.ledger.get(effect.tx_id) is None:
            return "refused: no committed pending row, so no authorization is asked"
        return None

    def _storage_fault(self, detail: str) -> None:
        self._count("storage_faults")
        if self.on_storage_fault is not None:
            self.on_storage_fault(detail)

    def _one(self, effect: Effect, now: float) -> None:
        match effect:
            case SetLeds(pattern=pattern):
                indication = LED_INDICATION.get(pattern, pattern)
                self.hw.leds.show(indication)
                self._observe("leds", pattern=indication)
            case Buzz(pattern=pattern):
                {"key": self.hw.buzzer.click, "ok": self.hw.buzzer.ok}.get(
                    pattern, self.hw.buzzer.error
                )()
                self._observe("buzz", pattern=pattern)
            case Prompt(text=text):
                log.info(text, extra={"event": "prompt"})
                self._observe("prompt", text=text)
            case StateChanged(state=state, reasons=reasons):
                log.info(
                    "session %s",
                    state,
                    extra={"event": "state", "state": state, "reasons": reasons},
                )
                self._observe("state", state=state, reasons=list(reasons))
            case RequestMatch():
                self.match(effect)
            case WriteLedger(record=record):
                document = self._tx_document(asdict(record))
                self.ledger.record(document, record.status, list(record.reasons), self.sign)
                if record.status != "pending":  # a refusal on the record: decided at once
                    self._ledger_changed()
                self._count("ledger_writes")
                self._observe("ledger", tx_id=record.tx_id, status=record.status)
            case UpdateLedger(tx_id=tx_id, status=status, reasons=reasons, token=token):
                self._settle(effect, tx_id, status, [str(r) for r in reasons], token)
            case RequestAuthorization():
                self._observe("authorize", tx_id=effect.tx_id, amount=effect.amount)
                if self.host is None:
                    self.on_no_host(effect)
                else:
                    self.host.request_authorization(effect, now)
            case PulseRelay(ms=ms):
                self.hw.relay.pulse(ms)
                if self.hw.passage is not None:
                    self.hw.passage.arm()  # a ride nobody takes is voided (session timeout)
                self._count("relay_pulses")
                log.info(
                    "gate opened", extra={"event": "relay_pulse", "ms": ms, "tx_id": effect.tx_id}
                )
                self._observe("relay", ms=ms)
            case ApproveVend(tx_id=tx_id, amount=amount):
                self.vends.append((tx_id, amount))
                log.info("vend approved", extra={"event": "vend", "tx_id": tx_id, "amount": amount})
                self._observe("vend", tx_id=tx_id, amount=amount)
                if self.vend is not None:
                    self.vend(effect, now)
            case OpenVendSession(funds=funds, offline_funds=offline_funds):
                self._observe("vend_session", funds=funds, offline_funds=offline_funds)
            case VoidTransaction(tx_id=tx_id, reason=reason):
                log.info("void", extra={"event": "void", "tx_id": tx_id, "reason": reason})
                if self.host is not None:
                    self.host.void(tx_id, reason)
                self._observe("void", tx_id=tx_id, reason=reason)
            case Notify(kind=kind, reasons=reasons, tx_id=tx_id):
                self._count(f"notify.{kind}")
                fields = {"reasons": list(reasons), "tx_id": tx_id}
                log.info(kind, extra={"event": "decision", "kind": kind, **fields})
                if self.host is not None:
                    self.host.publish_event(kind, fields)
                self._observe("notify", kind=kind, **fields)
            case _:
                log.warning("unknown effect %r ignored", type(effect).__name__)

    def _settle(
        self,
        effect: UpdateLedger,
        tx_id: str,
        status: TxStatus,
        reasons: list[str],
        token: str | None,
    ) -> None:
        """The ledger settles by its own rules (device/store/ledger.py); this logs and tells."""
        settled = self.ledger.settle(
            tx_id, status, reasons, token=token, offline=effect.offline, sign=self.sign
        )
        if settled is None:
            # The pending row is not there (its write failed): the storage cannot be trusted.
            log.error("ledger update for an unknown transaction", extra={"tx_id": tx_id})
            self._storage_fault(f"ledger update for an unknown transaction {tx_id}")
            return
        if settled.allowance_short:
            log.warning(
                "offline allowance already spent",
                extra={"event": "offline_allowance_short", "tx_id": tx_id},
            )
        self._observe("ledger", tx_id=tx_id, status=status, reasons=reasons, offline=effect.offline)
        self._ledger_changed()

    def _tx_document(self, record: dict[str, Any]) -> dict[str, Any]:
        """The ledger's (and the host's) transaction: the record, wall time, device. The
        ledger signs it once it has its place in the chain."""
        document: dict[str, Any] = {
            "id": record.pop("tx_id"),
            "created_at": created_at(self.clock.time()),
            "device_id": self.device_id,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in record.items()},
        }
        return document
