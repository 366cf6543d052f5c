"""Every page at 1,280 px and at 390 px (a phone): nothing wider than the screen (tables
become cards or scroll inside their own box), amounts with their currency, and the fleet's
sorting reachable by keyboard with aria-sort."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.console.browser_steps import logged_in, wait, wait_fleet_health
from tests.console.conftest import SHARD, ConsoleRig
from tests.console.fake_terminal import fault_status, telemetry

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]

PAGES = [
    "/",
    "/devices/gate-wide-with-a-long-name-01",
    "/alerts",
    "/customers",
    "/customers/cust-layout-with-a-long-token-0001",
    "/transactions",
    "/shards",
    "/enrol",
    "/operators",
    "/audit",
    "/no-such-page",
]


def overflow(driver: Any) -> int:
    """How many CSS pixels the page is wider than the window (0: no horizontal scroll)."""
    script = "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    return int(driver.execute_script(script))


@pytest.fixture(scope="module")
def filled(rig: ConsoleRig) -> ConsoleRig:
    """A terminal with long names and telemetry, one in fault, and a customer."""
    telemetry(rig, "gate-wide-with-a-long-name-01", interval_s=600.0)
    fault_status(rig, "gate-broken", "ledger", "3 committed ledger rows are missing " * 4)
    vector = np.random.default_rng(7).normal(size=rig.host.config.dim).astype(np.float32)
    rig.host.enrol(
        "cust-layout-with-a-long-token-0001",
        vector / np.linalg.norm(vector),
        shard_id=SHARD,
        balance=123_456,
    )
    return rig


@pytest.mark.parametrize("width", [1280, 390])
def test_no_page_scrolls_sideways(filled: ConsoleRig, browser: Any, width: int) -> None:
    browser.set_window_size(width, 900)
    try:
        logged_in(browser, filled.url, "ada")
        wait_fleet_health(browser, "gate-broken", "fault")
        assert browser.execute_script("return document.documentElement.clientWidth") <= width
        wide = {}
        for path in PAGES:
            browser.get(filled.url + path)
            wait(browser).until(
                lambda d: d.execute_script("return document.readyState") == "complete"
            )
            if path == "/devices/gate-wide-with-a-long-name-01":
                wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "figure.chart"))
            if overflow(browser) > 0:
                wide[path] = overflow(browser)
        assert wide == {}, f"pages wider than {width} px: {wide}"
    finally:
        browser.set_window_size(1400, 1000)


def test_amounts_show_their_currency(filled: ConsoleRig, browser: Any) -> None:
    logged_in(browser, filled.url, "vic")
    browser.get(f"{filled.url}/customers/cust-layout-with-a-long-token-0001")
    assert browser.find_element(By.ID, "balance").text == "€1,234.56"
    browser.get(f"{filled.url}/customers")
    assert "€1,234.56" in browser.find_element(By.ID, "customers").text


def test_fleet_sorts_by_keyboard_with_aria_sort(filled: ConsoleRig, browser: Any) -> None:
    logged_in(browser, filled.url, "vic")
    wait_fleet_health(browser, "gate-broken", "fault")
    header = browser.find_element(By.CSS_SELECTOR, '#fleet th[data-key="device_id"]')
    header.send_keys(Keys.ENTER)
    assert header.get_attribute("aria-sort") == "ascending"
    header.send_keys(Keys.ENTER)
    assert header.get_attribute("aria-sort") == "descending"
    health = browser.find_element(By.CSS_SELECTOR, '#fleet th[data-key="health"]')
    assert health.get_attribute("aria-sort") is None


def test_the_error_page_says_it_once_and_goes_back(filled: ConsoleRig, browser: Any) -> None:
    logged_in(browser, filled.url, "vic")
    browser.get(f"{filled.url}/customers")
    # followed from a page (a typed address has no referrer, and Back goes to the fleet)
    browser.execute_script("window.location.href = '/devices/no-such-terminal'")
    wait(browser).until(lambda d: d.find_elements(By.ID, "back"))
    page = browser.find_element(By.TAG_NAME, "main").text
    assert page.count("no terminal no-such-terminal has been seen") == 1
    back = browser.find_element(By.ID, "back")
    assert back.get_attribute("href") == f"{filled.url}/customers"  # no javascript: URL
    back.click()
    wait(browser).until(lambda d: d.current_url == f"{filled.url}/customers")
