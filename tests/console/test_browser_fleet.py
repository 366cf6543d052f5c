"""The fleet table follows a real terminal process (`blinkpay net`): online, offline by its
last will when the process is killed, online again when it restarts; /metrics says so too."""

from __future__ import annotations

import urllib.request

import pytest

from tests.console.browser_steps import logged_in, texts, wait, wait_fleet_health
from tests.console.conftest import ConsoleRig

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]


def scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_fleet_goes_offline_and_online_with_the_terminal_process(rig: ConsoleRig, browser) -> None:
    config = rig.terminal_config("gate-net-1")
    process = rig.start_terminal("net", config)
    logged_in(browser, rig.url, "vic")
    wait_fleet_health(browser, "gate-net-1", "ok")
    # telemetry fills the row: the shard the terminal holds, its outbox
    script = "return document.querySelector('tr[data-device=\"gate-net-1\"]').dataset.site"
    wait(browser).until(lambda d: d.execute_script(script) == "site-a")
    up = 'blinkpay_terminal_up{device_id="gate-net-1"}'
    assert scrape(rig.url)[up] == 1.0

    process.kill()  # no clean goodbye: the broker publishes the last will
    process.wait()
    wait_fleet_health(browser, "gate-net-1", "offline")
    assert scrape(rig.url)[up] == 0.0
    assert "last will" in texts(browser, 'tr[data-device="gate-net-1"] td.health')[0]

    rig.start_terminal("net", config)
    wait_fleet_health(browser, "gate-net-1", "ok")


def test_metrics_is_prometheus_text(rig: ConsoleRig) -> None:
    text = urllib.request.urlopen(f"{rig.url}/metrics", timeout=10).read().decode()
    assert "# TYPE blinkpay_terminal_up gauge" in text
    assert "# TYPE blinkpay_console_refusals_total counter" in text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            float(line.rpartition(" ")[2])  # every sample ends in a number
