"""The terminal page's charts come from the host's store: they show the history from before
a console restart, and a chosen time range (a week: per-minute aggregates, older than the
day of raw reports)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from backend.console.app import ConsoleServer, load_pipeline
from backend.console.service import Console
from tests.conftest import free_port
from tests.console.browser_steps import logged_in, text_of, wait, wait_fleet_up
from tests.console.conftest import ConsoleRig, _wait_http

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]

DEVICE = "gate-hist"


def stored_points(console: Console) -> int:
    now = time.time()
    return len(console.history.series(DEVICE, now - 3600, now, now)["points"])


def caption(driver: Any, key: str) -> str:
    return text_of(driver, f"chart-{key}")


def restart_console(rig: ConsoleRig) -> None:
    rig.server.stop()
    rig.console.stop()
    rig.console = Console(rig.config, load_pipeline(None)).start()
    rig.server = ConsoleServer(rig.console, "127.0.0.1", free_port()).start()
    _wait_http(rig.server.url)


def test_charts_keep_their_history_across_a_restart_and_a_range(
    rig: ConsoleRig, browser: Any
) -> None:
    rig.start_terminal("net", rig.terminal_config(DEVICE))
    logged_in(browser, rig.url, "vic")
    wait_fleet_up(browser, DEVICE)
    wait(browser).until(lambda _: stored_points(rig.console) >= 3)
    # three days ago: older than the raw retention, kept as a per-minute aggregate
    old = time.time() - 3 * 86400
    rig.console.history.record_telemetry(
        {"device_id": DEVICE, "ts": old, "fps": 7.0, "outbox_depth": 0, "decisions": {}}
    )
    rig.console.history.maintain()
    before = stored_points(rig.console)

    restart_console(rig)
    logged_in(browser, rig.url, "vic")
    browser.get(f"{rig.url}/devices/{DEVICE}")
    # the page's hour holds at least the reports from before the restart
    # (`blinkpay net` has no camera: no frame rate, but its outbox is reported)
    wait(browser).until(lambda d: "points from" in caption(d, "outbox_depth"))
    count = int(caption(browser, "outbox_depth").split(": ")[1].split(" ")[0])
    assert count >= before
    assert "every report" in text_of(browser, "resolution")
    assert "no data in this range" in caption(browser, "fps")

    Select(browser.find_element(By.ID, "range")).select_by_value("7d")
    wait(browser).until(lambda d: "per-minute" in text_of(d, "resolution"))
    day = time.strftime("%Y-%m-%d", time.gmtime(old))
    wait(browser).until(lambda d: f"points from {day}" in caption(d, "fps"))
    assert "lowest 7 frames/s" in caption(browser, "fps")
