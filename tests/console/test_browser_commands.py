"""Commands that never vanish: sent to an offline terminal, a command is shown pending and
runs when the terminal comes back (a real `blinkpay net` process, killed and restarted);
one to a terminal that does not come back expires and says so; the list is newest first
with time, operator and result."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.conftest import mosquitto_available
from tests.console.browser_steps import logged_in, wait, wait_fleet_health, wait_fleet_up
from tests.console.conftest import ConsoleRig, open_rig

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]

TTL_S = 20.0


@pytest.fixture(scope="module")
def rig() -> Iterator[ConsoleRig]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    with open_rig({"command_ttl_s": TTL_S}) as running:
        yield running


def rows(browser: Any) -> list[dict[str, str]]:
    script = (
        "return [...document.querySelectorAll('#results tbody tr')].map(tr =>"
        " ({request: tr.dataset.request, status: tr.dataset.status, text: tr.innerText}))"
    )
    return list(browser.execute_script(script))


def send(browser: Any, rig: ConsoleRig, device_id: str, name: str) -> str:
    browser.get(f"{rig.url}/devices/{device_id}")
    before = {r["request"] for r in rows(browser)}
    browser.find_element(By.ID, f"cmd-{name}").click()
    wait(browser).until(lambda d: {r["request"] for r in rows(d)} - before)
    return next(r["request"] for r in rows(browser) if r["request"] not in before)


def status(browser: Any, request: str) -> str:
    return next((r["status"] for r in rows(browser) if r["request"] == request), "")


def test_a_command_waits_for_an_offline_terminal_and_runs_when_it_returns(
    rig: ConsoleRig, browser: Any
) -> None:
    config = rig.terminal_config("gate-away")
    process = rig.start_terminal("net", config)
    logged_in(browser, rig.url, "olga")
    wait_fleet_up(browser, "gate-away")
    process.send_signal(signal.SIGKILL)  # gone without a goodbye: its last will
    process.wait()
    wait_fleet_health(browser, "gate-away", "offline")

    request = send(browser, rig, "gate-away", "resync")
    assert status(browser, request) == "pending"
    text = next(r["text"] for r in rows(browser) if r["request"] == request)
    assert "waits until" in text and "olga" in text and "resync" in text

    rig.start_terminal("net", config)  # it comes back: the console delivers, it runs once
    wait(browser).until(lambda d: status(d, request) == "done")
    command = rig.console.commands.get(request)
    assert command is not None and command["delivered_at"] is not None


def test_a_command_to_a_terminal_that_stays_away_expires(rig: ConsoleRig, browser: Any) -> None:
    config = rig.terminal_config("gate-gone")
    process = rig.start_terminal("net", config)
    logged_in(browser, rig.url, "olga")
    wait_fleet_up(browser, "gate-gone")
    process.send_signal(signal.SIGKILL)
    process.wait()
    wait_fleet_health(browser, "gate-gone", "offline")

    first = send(browser, rig, "gate-gone", "resync")
    second = send(browser, rig, "gate-gone", "selftest")
    assert [r["request"] for r in rows(browser)][:2] == [second, first]  # newest first
    wait(browser, TTL_S + 60).until(lambda d: status(d, first) == "expired")
    assert "did not come back" in next(r["text"] for r in rows(browser) if r["request"] == first)


def test_a_command_to_a_whole_site(rig: ConsoleRig, browser: Any) -> None:
    rig.start_terminal("net", rig.terminal_config("gate-site"))
    logged_in(browser, rig.url, "olga")
    wait_fleet_up(browser, "gate-site")
    wait(browser).until(
        lambda d: (
            d.execute_script(
                "return document.querySelector('tr[data-device=gate-site]').dataset.site"
            )
            == "site-a"
        )
    )
    browser.get(rig.url)  # the site list is rendered with the page
    browser.find_element(By.CSS_SELECTOR, "details.card summary").click()
    browser.find_element(By.ID, "bulk-send").click()  # resync, the first command
    wait(browser).until(lambda d: d.find_elements(By.ID, "bulk-result"))
    result = browser.find_element(By.ID, "bulk-result").text
    assert "gate-site" in result and "gate-away" in result
    browser.get(f"{rig.url}/devices/gate-site")
    wait(browser).until(lambda d: any(r["status"] == "done" for r in rows(d)))
