"""A fleet of more terminals than a page: 50 rows a page, next and previous, search by id."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.console.browser_steps import logged_in, text_of, texts, wait
from tests.console.conftest import ConsoleRig
from tests.console.fake_terminal import publish_many, telemetry_body, topics

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]


def test_the_fleet_pages_and_searches(rig: ConsoleRig, browser: Any) -> None:
    names = [f"gate-p-{i:02d}" for i in range(62)]
    publish_many(
        rig,
        [(topics(rig, n).telemetry, telemetry_body(n, interval_s=600.0)) for n in names],
    )
    logged_in(browser, rig.url, "vic")
    wait(browser).until(lambda d: "terminals shown: 62" in text_of(d, "fleet-page"))
    assert len(texts(browser, "#fleet tbody tr")) == 50
    assert "Page 1 of 2" in text_of(browser, "fleet-page")
    browser.find_element(By.ID, "fleet-next").click()
    wait(browser).until(lambda d: len(texts(d, "#fleet tbody tr")) == 12)
    assert "gate-p-61" in texts(browser, "#fleet tbody tr")[-1]
    browser.find_element(By.ID, "fleet-prev").click()
    wait(browser).until(lambda d: len(texts(d, "#fleet tbody tr")) == 50)
    browser.find_element(By.ID, "search").send_keys("gate-p-07")
    wait(browser).until(lambda d: len(texts(d, "#fleet tbody tr")) == 1)
    assert "terminals shown: 1" in text_of(browser, "fleet-page")
