"""Health as the fleet page, /api/fleet and /metrics show it, driven through the real broker:
a retained `fault` status, an `out_of_service` telemetry, a terminal process that goes
silent (SIGSTOP: no last will), and the console's own broker stopped. Each raises an alert
that reaches a webhook on loopback (its first answer a 500: the console retries)."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import mosquitto_available
from tests.console.browser_steps import (
    fleet_health,
    logged_in,
    text_of,
    wait,
    wait_fleet_health,
    wait_fleet_up,
)
from tests.console.conftest import ConsoleRig, open_rig
from tests.console.fake_terminal import fault_status, telemetry
from tests.console.sinks import WebhookSink, webhook_sink
from tests.console.test_browser_fleet import scrape

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookSink]:
    with webhook_sink(fail_first=1) as sink:
        yield sink


@pytest.fixture(scope="module")
def rig(hook: WebhookSink) -> Iterator[ConsoleRig]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    with open_rig({"webhooks": [hook.url]}) as running:
        yield running


def alerted(hook: WebhookSink, device_id: str, kind: str) -> None:
    hook.wait_for(
        lambda got: any(
            b["event"] == "raised"
            and b["alert"]["device_id"] == device_id
            and b["alert"]["kind"] == kind
            for b in got
        )
    )


def api_fleet(browser: Any, rig: ConsoleRig) -> dict[str, Any]:
    """/api/fleet with the browser's session cookie."""
    cookie = browser.get_cookie("blinkpay_console")["value"]
    request = urllib.request.Request(
        f"{rig.url}/api/fleet", headers={"Cookie": f"blinkpay_console={cookie}"}
    )
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def row_of(snapshot: dict[str, Any], device_id: str) -> dict[str, Any]:
    return next(r for r in snapshot["terminals"] if r["device_id"] == device_id)


def test_fault_out_of_service_and_silence_show_as_health(
    rig: ConsoleRig, browser: Any, hook: WebhookSink
) -> None:
    logged_in(browser, rig.url, "vic")
    fault_status(rig, "gate-fault", "ledger", "3 committed ledger rows are missing")
    telemetry(
        rig,
        "gate-oos",
        service={"state": "out_of_service", "detail": "ledger write failed: disk full"},
        interval_s=600.0,  # one report; it stays current for the test
    )
    config = rig.terminal_config("gate-quiet", mqtt={"keepalive_s": 120})
    quiet = rig.start_terminal("net", config)

    wait_fleet_health(browser, "gate-fault", "fault")
    wait_fleet_health(browser, "gate-oos", "out_of_service")
    wait_fleet_up(browser, "gate-quiet")
    snapshot = api_fleet(browser, rig)
    fault = row_of(snapshot, "gate-fault")
    assert fault["health_reason"] == "ledger: 3 committed ledger rows are missing"
    assert row_of(snapshot, "gate-oos")["health_reason"] == "ledger write failed: disk full"
    # problems first
    assert snapshot["terminals"][0]["device_id"] == "gate-fault"
    assert snapshot["counts"]["fault"] == 1
    metrics = scrape(rig.url)
    assert metrics['blinkpay_terminal_health{device_id="gate-fault",health="fault"}'] == 1.0
    assert metrics['blinkpay_terminal_health{device_id="gate-oos",health="ok"}'] == 0.0
    alerted(hook, "gate-fault", "fault")
    alerted(hook, "gate-oos", "out_of_service")

    # its telemetry has come (with its 1 s interval): silence is measured against that
    wait(browser).until(lambda _: row_of(api_fleet(browser, rig), "gate-quiet")["site"])
    quiet.send_signal(signal.SIGSTOP)  # alive on the broker (no will), silent
    try:
        wait_fleet_health(browser, "gate-quiet", "stale")
        assert "no telemetry for" in row_of(api_fleet(browser, rig), "gate-quiet")["health_reason"]
        alerted(hook, "gate-quiet", "stale")
    finally:
        quiet.send_signal(signal.SIGCONT)
    wait_fleet_up(browser, "gate-quiet")
    hook.wait_for(
        lambda got: any(
            b["event"] == "cleared" and b["alert"]["device_id"] == "gate-quiet" for b in got
        )
    )
    # the alerts page lists what is open, and the history with each delivery
    browser.get(f"{rig.url}/alerts")
    assert "gate-fault" in text_of(browser, "open-alerts")
    history = text_of(browser, "alert-history")
    assert "delivered (2 tries)" in history  # the first got a 500
    assert f"alert raised → {hook.url}" in history and "alert cleared → " in history


def test_a_stopped_broker_makes_every_terminal_stale(
    rig: ConsoleRig, browser: Any, hook: WebhookSink
) -> None:
    logged_in(browser, rig.url, "vic")
    telemetry(rig, "gate-live", interval_s=60.0)
    wait_fleet_up(browser, "gate-live")
    assert "broker link: up" in text_of(browser, "broker")
    rig.broker.stop()
    try:
        wait(browser).until(lambda d: "DOWN" in text_of(d, "broker"))
        wait_fleet_health(browser, "gate-live", "stale")
        reason = row_of(api_fleet(browser, rig), "gate-live")["health_reason"]
        assert "broker link is down" in reason
        assert scrape(rig.url)["blinkpay_console_broker_up"] == 0.0
        alerted(hook, "console", "broker_down")
        alerted(hook, "gate-live", "stale")
    finally:
        rig.broker.start()
    wait(browser).until(lambda d: "broker link: up" in text_of(d, "broker"))
    assert fleet_health(browser, "gate-live") in ("ok", "stale")
