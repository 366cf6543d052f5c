"""Two languages: `/api/fleet` and the pages in Simplified Chinese from Accept-Language
zh-CN, and from the operator's language setting in the browser; health reasons too."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.console.browser_steps import logged_in, text_of, texts, wait, wait_fleet_health
from tests.console.conftest import ConsoleRig
from tests.console.fake_terminal import fault_status, telemetry

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]


def fetch(rig: ConsoleRig, browser: Any, path: str, language: str) -> str:
    cookie = browser.get_cookie("blinkpay_console")["value"]
    request = urllib.request.Request(
        f"{rig.url}{path}",
        headers={"Cookie": f"blinkpay_console={cookie}", "Accept-Language": language},
    )
    return urllib.request.urlopen(request, timeout=10).read().decode()


def test_accept_language_zh_cn(rig: ConsoleRig, browser: Any) -> None:
    fault_status(rig, "gate-zh", "ledger", "3 committed ledger rows are missing")
    telemetry(rig, "gate-zh-quiet", interval_s=1.0)  # one report, then silence: stale
    logged_in(browser, rig.url, "vic")
    wait_fleet_health(browser, "gate-zh", "fault")
    wait_fleet_health(browser, "gate-zh-quiet", "stale")

    fleet = json.loads(fetch(rig, browser, "/api/fleet", "zh-CN,zh;q=0.9,en;q=0.8"))
    rows = {r["device_id"]: r for r in fleet["terminals"]}
    assert rows["gate-zh"]["health"] == "fault"  # the value stays; its label is translated
    assert rows["gate-zh"]["health_label"] == "故障"
    assert rows["gate-zh-quiet"]["health_label"] == "无更新"
    assert "秒没有遥测" in rows["gate-zh-quiet"]["health_reason"]
    english = json.loads(fetch(rig, browser, "/api/fleet", "en-US"))
    quiet = next(r for r in english["terminals"] if r["device_id"] == "gate-zh-quiet")
    assert quiet["health_reason"].startswith("no telemetry for")

    for path, words in (
        ("/", ["终端总览", "健康状况", "故障"]),
        ("/alerts", ["告警", "当前未解除"]),
        ("/customers", ["客户", "余额"]),
        ("/transactions", ["交易"]),
        ("/devices/gate-zh", ["遥测", "命令"]),
    ):
        html = fetch(rig, browser, path, "zh-CN")
        assert '<html lang="zh-CN"' in html, path
        for word in words:
            assert word in html, (path, word)


def test_the_operators_language_setting(rig: ConsoleRig, browser: Any) -> None:
    logged_in(browser, rig.url, "vic")
    Select(browser.find_element(By.ID, "lang")).select_by_value("zh_CN")
    browser.find_element(By.ID, "lang-set").click()
    wait(browser).until(lambda d: "终端总览" in texts(d, "h1"))
    # the live table (script-built rows) speaks it too
    wait(browser).until(lambda d: "实时更新" in text_of(d, "live"))
    Select(browser.find_element(By.ID, "lang")).select_by_value("en")
    browser.find_element(By.ID, "lang-set").click()
    wait(browser).until(lambda d: texts(d, "h1") == ["Fleet"])
