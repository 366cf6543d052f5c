"""Every scripted VMC scenario over a real pty, on both serial transports.

The raw-UART controller answers the VMC simulator's bytes itself; the HAT controller talks
to an emulated HAT. Response times are measured and printed (run with -s), never asserted:
a shared test machine says nothing about a Pi's timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from device.vending.hat_sim import open_hat_link
from device.vending.mdb.config import ReaderSetup
from device.vending.scenarios import run_scenario, scenarios
from device.vending.vmc_sim import Link, bench_polls, distribution, open_uart_link

SETUP = ReaderSetup(max_price=5000)
OPENERS: dict[str, Callable[[ReaderSetup], Link]] = {
    "mdb-uart": open_uart_link,
    "mdb-hat": open_hat_link,
}


@pytest.fixture(params=sorted(OPENERS))
def link(request: pytest.FixtureRequest) -> Iterator[Link]:
    opened = OPENERS[request.param](SETUP)
    try:
        yield opened
    finally:
        opened.close()


def test_every_scenario_on_every_transport(link: Link) -> None:
    failed = []
    for name, script, expected in scenarios(SETUP.max_price, link.transport):
        result = run_scenario(link, script, name, expected)
        if not result.ok:
            failed.append(result.to_dict())
    assert failed == []
    print(f"\n{link.transport}: response times {distribution(link.vmc.latencies_ms)}")


def test_uart_poll_response_times_are_measured() -> None:
    link = open_uart_link(SETUP)
    try:
        from device.vending.scenarios import start_up

        start_up(link)
        result = bench_polls(link, 200)
    finally:
        link.close()
    assert result.count + link.vmc.silences >= 200
    print(f"\nmdb-uart POLL -> ACK over a pty: {result}")
