"""From the vending port to the payment session and back, pure: for the shell to wire in.

The session (device/core/session.py) knows the vending machine through AmountSet,
VendResult and Cancel events and the ApproveVend effect. This module says which port
event becomes which session event, and which effect becomes which controller call; the
shell keeps the current transaction id (ApproveVend carries it) and calls these.
"""

from __future__ import annotations

from device.core.events import (
    AmountSet,
    ApproveVend,
    Cancel,
    Effect,
    Event,
    StateChanged,
    VendResult,
)
from device.vending.port import (
    ReaderDisabled,
    SessionCancelled,
    VendCancelled,
    VendFailed,
    VendingController,
    VendingEvent,
    VendRequested,
    VendSucceeded,
)


def session_events(event: VendingEvent, tx_id: str | None) -> list[Event]:
    """The session events a port event means. `tx_id`: the approved transaction waiting
    for its vend (the last ApproveVend's), or None."""
    now = event.now
    match event:
        case VendRequested(price=price):
            return [AmountSet(now, price)]
        case VendSucceeded():
            return [VendResult(now, tx_id, True)] if tx_id else []
        case VendFailed():
            return [VendResult(now, tx_id, False)] if tx_id else []
        case ReaderDisabled(reason="vmc"):
            # MDB: a disable inside a session applies when the session ends (Section
            # 7.4.12); the vend in progress goes on and reports its own outcome.
            return []
        case VendCancelled() | SessionCancelled() | ReaderDisabled():
            # Before payment: the selection is gone. After approval: nothing was vended,
            # so the payment is voided (VendResult failure) - the session ignores the one
            # that does not apply to its state.
            out: list[Event] = [AmountSet(now, None), Cancel(now, source="vending_machine")]
            return [*out, VendResult(now, tx_id, False)] if tx_id else out
    return []  # ReaderEnabled, SessionStarted, SessionEnded, CashSale: the shell's business


def apply_effect(effect: Effect, controller: VendingController) -> bool | None:
    """Carry out the session's effect on the vending machine, if it is one for it."""
    match effect:
        case ApproveVend(amount=amount):
            return controller.approve_vend(amount)
        case StateChanged(state="declined"):
            return controller.deny_vend()
    return None
