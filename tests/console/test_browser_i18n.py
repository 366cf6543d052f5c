"""Two languages: `/api/fleet` and the pages in Simplified Chinese from Accept-Language
zh-CN, and from the operator's language setting in the browser; health reasons too, and
the enrolment page's live texts (the camera's quality line, a photo taken, the blink's
answer, no camera) and its refusals; a terminal's events (type, outcome, reason codes) and
the fleet's last transaction in words, the code beside them, also as the scripts re-render
them live."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.console.browser_steps import (
    event_cells,
    fill_enrolment,
    logged_in,
    text_of,
    texts,
    wait,
    wait_fleet_health,
    wait_text,
)
from tests.console.conftest import ConsoleRig
from tests.console.fake_terminal import event_body, events, fault_status, telemetry
from tests.console.test_i18n_pages import decision_events
from tests.net.test_e2e import wait_until

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
    telemetry(rig, "gate-zh-page", interval_s=60.0)
    browser.get(f"{rig.url}/devices/gate-zh-page")  # a script-filled terminal page
    wait(browser).until(lambda d: text_of(d, "config-state") == "暂无")
    Select(browser.find_element(By.ID, "lang")).select_by_value("en")
    browser.find_element(By.ID, "lang-set").click()  # back to the same page, in English
    wait(browser).until(lambda d: texts(d, "#config-state") == ["none yet"])
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"


def _in_chinese(browser: Any) -> None:
    Select(browser.find_element(By.ID, "lang")).select_by_value("zh_CN")
    browser.find_element(By.ID, "lang-set").click()
    # read in one script call: the form's answer replaces the page, and an element found
    # on the old one is stale by the time it is read
    wait(browser).until(
        lambda d: d.execute_script("return document.documentElement.lang") == "zh-CN"
    )


def test_the_enrolment_page_speaks_chinese(rig: ConsoleRig, browser: Any) -> None:
    logged_in(browser, rig.url, "olga")
    _in_chinese(browser)
    fill_enrolment(browser, rig.url, "cust-zh")
    assert "版本" in text_of(browser, "enrol-form")
    browser.find_element(By.ID, "camera-start").click()
    wait_text(browser, (By.ID, "quality"), "质量：合格（一张人脸，")
    outcomes = []
    for _ in range(10):  # a frame caught mid-blink is not taken (the clip blinks)
        browser.find_element(By.ID, "camera-take").click()
        wait(browser).until(lambda d: text_of(d, "take-result"))
        outcomes.append(text_of(browser, "take-result"))
        if outcomes[-1] == "已拍下第 1 张照片":
            break
        assert outcomes[-1].startswith("未采用：尚不合格（"), outcomes
    assert outcomes[-1] == "已拍下第 1 张照片", outcomes
    assert text_of(browser, "shots") == "已拍摄 1 张摄像头照片"
    browser.find_element(By.ID, "enrol").click()  # camera photos without a blink
    wait_text(browser, (By.ID, "message"), "摄像头照片需要眨眼检测")
    assert rig.console.customer("cust-zh") is None

    browser.find_element(By.ID, "camera-start").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "blink-start").is_enabled())
    browser.find_element(By.ID, "blink-start").click()
    answer = re.compile(
        r"眨眼：(已检测到，确认为活体人脸（\d+ 帧）|未检测到（[^A-Za-z]+），请重试)"
    )
    wait(browser).until(lambda d: answer.fullmatch(text_of(d, "blink")))

    browser.get(f"{rig.url}/enrol")  # a browser without a camera
    browser.execute_script(
        "navigator.mediaDevices.getUserMedia = () => Promise.reject(new Error('NotFoundError'))"
    )
    browser.find_element(By.ID, "camera-start").click()
    wait_text(browser, (By.ID, "quality"), "无法使用摄像头：NotFoundError（请改用照片文件）")


def test_problem_pages_speak_chinese(rig: ConsoleRig, browser: Any) -> None:
    logged_in(browser, rig.url, "vic")
    _in_chinese(browser)
    browser.get(f"{rig.url}/customers/nobody-zh")
    wait_text(browser, (By.ID, "problem"), "没有账户 nobody-zh")
    assert texts(browser, "h1") == ["未完成"]
    assert text_of(browser, "reason") == "unknown_account"  # the counted reason stays
    browser.get(f"{rig.url}/operators")  # an admin's page
    wait_text(browser, (By.ID, "problem"), "此操作需要管理员角色")


def test_the_operators_page_speaks_chinese(rig: ConsoleRig, browser: Any) -> None:
    """Its buttons, labels, states and roles translated; the role set by its fixed value."""
    from tests.console.conftest import PASSWORD

    rig.console.auth.add_operator("zhou", "operator", PASSWORD)
    logged_in(browser, rig.url, "ada")
    _in_chinese(browser)
    browser.get(f"{rig.url}/operators")
    row = text_of(browser, "op-zhou")
    for word in ("操作员", "已启用", "设置角色", "停用", "重置密码", "结束会话"):
        assert word in row, (word, row)
    password = browser.find_element(By.CSS_SELECTOR, "#op-zhou input[name=password]")
    assert password.get_attribute("placeholder") == "新密码"
    assert password.get_attribute("aria-label") == "zhou 的新密码"
    role = Select(browser.find_element(By.CSS_SELECTOR, "#op-zhou select[name=role]"))
    role.select_by_visible_text("只读")
    browser.find_element(By.CSS_SELECTOR, "#op-zhou form[action$='/role'] button").click()
    wait_text(browser, (By.ID, "op-zhou"), "只读")
    roles = {o["name"]: o["role"] for o in rig.console.auth.operators()}
    assert roles["zhou"] == "viewer"


def test_a_terminals_events_in_words(rig: ConsoleRig, browser: Any) -> None:
    device = "gate-zh-events"
    rig.terminal_config(device)  # registered with the host: the fleet shows its ledger
    events(rig, device, decision_events(device))
    telemetry(rig, device, interval_s=60.0)
    rig.console.store.execute(
        "INSERT INTO transactions (tx_id, device_id, token, amount, status, result, body,"
        " received_at, host_id) VALUES (?, ?, 'tok', 250, 'approved', 'recorded', '{}', ?,"
        " 'host-a')",
        ("0192f0c4-6a53-7cc1-b3f2-5d1e2a3b4c5e", device, time.time()),
    )
    assert wait_until(lambda: len(rig.console.history.events(device)) == 4)
    logged_in(browser, rig.url, "vic")
    _in_chinese(browser)
    # the fleet's last transaction (script-built rows)
    last_tx = (
        "const s = document.querySelector('tr[data-device=\"gate-zh-events\"] .coded');"
        " return s ? [s.dataset.code, s.firstChild.data.trim()] : null"
    )
    wait(browser).until(lambda d: d.execute_script(last_tx) == ["approved", "已批准"])

    browser.get(f"{rig.url}/devices/{device}")
    wait(browser).until(lambda d: len(event_cells(d)) == 4)
    rows = event_cells(browser)  # newest first
    assert rows[3] == [
        ("session_aborted", "付款前尝试已结束"),
        ("challenge_unavailable", "无法判定光线挑战"),
    ]
    assert rows[2] == [
        ("auth_fallback", "离线决定（未连上主机）"),
        ("auth_unavailable", "无法连接主机"),
        ("offline_allowance", "离线：离线额度不足"),
    ]
    assert rows[1] == [
        ("void", "已向主机报告作废"),
        ("voided", "已作废（已退款）"),
        ("passage_timeout", "无人通过闸门：本次乘车已作废"),
    ]
    # a newer terminal's codes, shown as they are
    assert rows[0] == [("queue_jump", ""), ("held", ""), ("crowd_detected", "")]

    # an event that arrives while the page is open: the script renders it in words too
    events(rig, device, [event_body(device, 5, "liveness_rejected", None, ("replay_suspected",))])
    wait(browser).until(lambda d: len(event_cells(d)) == 5)
    assert event_cells(browser)[0] == [
        ("liveness_rejected", "活体检测拒绝"),
        ("replay_suspected", "疑似照片或屏幕翻拍"),
    ]

    Select(browser.find_element(By.ID, "lang")).select_by_value("en")
    browser.find_element(By.ID, "lang-set").click()  # back to the same page, in English
    wait(browser).until(lambda d: d.execute_script("return document.documentElement.lang") == "en")
    wait(browser).until(lambda d: len(event_cells(d)) == 5)
    rows = event_cells(browser)
    assert rows[0] == [
        ("liveness_rejected", "Liveness refusal"),
        ("replay_suspected", "Suspected photo or screen replay"),
    ]
    assert rows[4] == [
        ("session_aborted", "Attempt ended before payment"),
        ("challenge_unavailable", "Light challenge could not be judged"),
    ]
    assert ("offline_allowance", "Offline: the offline allowance does not cover it") in rows[3]


def test_an_alerts_reason_in_chinese(rig: ConsoleRig, browser: Any) -> None:
    """The alerts page in Chinese: an alert the console raised (a terminal gone silent)
    gives its reason in Chinese, the English it was raised with kept for the deliveries."""
    telemetry(rig, "gate-zh-alert", interval_s=1.0)  # one report, then silence: stale
    assert wait_until(lambda: "gate-zh-alert" in rig.console.alerts.open(), timeout=30)
    logged_in(browser, rig.url, "vic")
    _in_chinese(browser)
    browser.get(f"{rig.url}/alerts")
    cell = (
        "const r = document.querySelector('#open-alerts tr[data-device=\"gate-zh-alert\"]');"
        " return r ? r.querySelector('td[data-label=\"原因\"]').innerText : null"
    )
    wait(browser).until(lambda d: d.execute_script(cell))
    reason = browser.execute_script(cell)
    assert re.fullmatch(r"\d+ 秒没有遥测（3 个上报间隔为 3 秒）", reason), reason
    assert rig.console.alerts.open()["gate-zh-alert"]["reason"].startswith("no telemetry for")


REFUSED_ROWS = """return [...document.querySelectorAll('#refusals tbody tr')].map(tr => {
  const s = tr.querySelector('.coded'), n = tr.querySelector('td.amount');
  return s ? [s.dataset.code, s.firstChild.nodeType === 3 ? s.firstChild.data.trim() : '',
    n.textContent] : [tr.textContent]; })"""


def test_the_messages_a_terminal_refused_in_words(rig: ConsoleRig, browser: Any) -> None:
    """The device page lists what the terminal would not accept from the network (its
    telemetry's `rejected`), in words, and follows new telemetry while open."""
    device = "gate-zh-refusals"
    telemetry(rig, device, interval_s=60.0)
    logged_in(browser, rig.url, "vic")
    _in_chinese(browser)
    browser.get(f"{rig.url}/devices/{device}")
    wait(browser).until(lambda d: d.execute_script(REFUSED_ROWS) == [["没有拒收"]])
    rejected = {"bad_signature": 4, "repeat": 1, "brand_new_reason": 2}
    telemetry(rig, device, seq=2, interval_s=60.0, rejected=rejected)
    wait(browser).until(lambda d: len(d.execute_script(REFUSED_ROWS)) == 3)
    forged = ["bad_signature", "签名无效（伪造或被篡改）", "4"]
    assert browser.execute_script(REFUSED_ROWS) == [
        forged,
        ["brand_new_reason", "", "2"],  # a newer terminal's reason, as it is
        ["repeat", "命令重发（已答复，不会执行两次）", "1"],
    ]
    browser.refresh()  # the page as the server renders it says the same
    wait(browser).until(lambda d: len(d.execute_script(REFUSED_ROWS)) == 3)
    assert browser.execute_script(REFUSED_ROWS)[0] == forged
