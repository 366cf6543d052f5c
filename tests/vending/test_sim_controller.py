"""The in-process simulated vending controller: the port's flow on the real MDB device."""

from __future__ import annotations

from device.clock import FakeClock
from device.vending.mdb.config import ReaderSetup
from device.vending.port import (
    ReaderDisabled,
    ReaderEnabled,
    SessionCancelled,
    SessionEnded,
    SessionStarted,
    VendCancelled,
    VendFailed,
    VendRequested,
)
from device.vending.sim import SimVendingController


def controller(auto_vend: bool = True) -> tuple[SimVendingController, FakeClock]:
    clock = FakeClock()
    sim = SimVendingController(ReaderSetup(max_price=3000), clock, auto_vend=auto_vend)
    sim.start()
    return sim, clock


def names(sim: SimVendingController) -> list[str]:
    return [type(e).__name__ for e in sim.events()]


def test_a_sale() -> None:
    sim, clock = controller()
    assert sim.events() == [ReaderEnabled(clock.monotonic())]
    assert sim.begin_session(2000)
    assert sim.events() == [SessionStarted(clock.monotonic(), 2000)]
    sim.select(item=4, price=250)
    assert sim.events() == [VendRequested(clock.monotonic(), 4, 250)]
    assert sim.approve_vend(250)
    assert names(sim) == ["VendSucceeded", "SessionEnded"]


def test_a_jam_voids_the_payment() -> None:
    sim, clock = controller(auto_vend=False)
    sim.events()
    sim.begin_session(2000)
    sim.select(item=4, price=250)
    sim.approve_vend(250)
    sim.events()
    sim.vend_result(False)
    assert sim.events() == [VendFailed(clock.monotonic(), 4), SessionEnded(clock.monotonic())]


def test_the_terminal_denies_and_cancels() -> None:
    sim, _ = controller()
    sim.events()
    sim.begin_session(2000)
    sim.select(item=1, price=100)
    sim.events()
    assert sim.cancel()
    assert names(sim) == ["SessionEnded"]
    assert sim.stats() == {"reset": 1}


def test_the_machine_cancels_and_disables() -> None:
    sim, clock = controller()
    sim.events()
    sim.begin_session(2000)
    sim.select(item=1, price=100)
    sim.events()
    sim.press_cancel()
    assert names(sim) == ["VendCancelled", "SessionEnded"]
    sim.disable()
    assert sim.events() == [ReaderDisabled(clock.monotonic())]
    assert not sim.begin_session(100)


def test_over_the_limit_never_reaches_the_terminal() -> None:
    sim, _ = controller()
    sim.events()
    sim.begin_session(5000)  # capped at max_price 3000
    sim.events()
    sim.select(item=2, price=3001)
    assert sim.events() == []
    assert sim.stats()["over_max_price"] == 1


def test_a_machine_reset_mid_session() -> None:
    sim, clock = controller()
    sim.events()
    sim.begin_session(2000)
    sim.select(item=1, price=100)
    sim.events()
    sim.reset()
    now = clock.monotonic()
    assert sim.events() == [
        SessionCancelled(now, "bus_reset"),
        ReaderDisabled(now, "bus_reset"),
        ReaderEnabled(now),
    ]


def test_an_undecided_vend_times_out() -> None:
    sim, clock = controller()
    sim.events()
    sim.begin_session(2000)
    sim.select(item=1, price=100)
    sim.events()
    clock.advance(60)
    assert sim.events() == [VendCancelled(clock.monotonic(), "timeout")]
    assert sim.transcript[-2:] == ["data 06H", "ack"]  # the machine got VEND DENIED
    assert not sim.approve_vend(100)  # too late
