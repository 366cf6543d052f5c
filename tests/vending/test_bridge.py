"""Port events into session events, session effects into controller calls."""

from __future__ import annotations

from device.clock import FakeClock
from device.core.events import AmountSet, ApproveVend, Cancel, StateChanged, VendResult
from device.vending.bridge import apply_effect, session_events
from device.vending.mdb.config import ReaderSetup
from device.vending.port import (
    ReaderEnabled,
    SessionCancelled,
    VendCancelled,
    VendFailed,
    VendRequested,
    VendSucceeded,
)
from device.vending.sim import SimVendingController


def test_port_events_become_session_events() -> None:
    assert session_events(VendRequested(1.0, 4, 250), None) == [AmountSet(1.0, 250)]
    assert session_events(VendSucceeded(2.0, 4), "tx1") == [VendResult(2.0, "tx1", True)]
    assert session_events(VendFailed(2.0, 4), "tx1") == [VendResult(2.0, "tx1", False)]
    assert session_events(VendSucceeded(2.0, 4), None) == []
    assert session_events(ReaderEnabled(0.5), None) == []


def test_a_withdrawn_selection_clears_the_amount_and_voids_an_approval() -> None:
    cleared = [AmountSet(3.0, None), Cancel(3.0, "vending_machine")]
    assert session_events(VendCancelled(3.0, "vmc"), None) == cleared
    assert session_events(SessionCancelled(3.0, "bus_reset"), "tx1") == [
        *cleared,
        VendResult(3.0, "tx1", False),
    ]


def test_effects_drive_the_controller() -> None:
    sim = SimVendingController(ReaderSetup(), FakeClock(), auto_vend=False)
    sim.start()
    sim.begin_session(1000)
    sim.select(item=2, price=300)
    sim.events()
    assert apply_effect(ApproveVend("tx1", 300), sim) is True
    assert apply_effect(StateChanged("declined"), sim) is False  # nothing left to deny
    assert apply_effect(StateChanged("idle"), sim) is None
