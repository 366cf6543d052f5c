"""Problem pages and refusal lines in the operator's language (Accept-Language zh-CN): a
role refusal, an unknown account, an erasure without its confirmation, a refusal of the
host's migrations, a config change refused, an unknown command, a weak password for a new
operator, a wrong password, an expired session on an API call; the same pages in English
keep their words; the reasons counted stay fixed. A terminal's events (type, outcome, reason
codes), the ledger rows' status and result, and the audit log's actions in words, the code
beside them; an alert's reason in the reader's language; a config refusal in the terminal's
own words, as it came."""

from __future__ import annotations

import html
import re
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette would like httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from backend.console.app import make_app
from device.config import load_config
from device.crypto.signing import load_signing_key, sign_document
from device.remote.config_set import refusals
from tests.console.conftest import ConsoleRig
from tests.console.fake_terminal import event_body, events, publish, telemetry, topics
from tests.console.test_hardening import csrf_of, login
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en-GB"}


def shown(page: str, element: str) -> str:
    found = re.search(rf'id="{element}"[^>]*>(.*?)</', page, re.S)
    assert found, f"no #{element} on the page"
    return html.unescape(found[1]).strip()


@pytest.fixture
def client(rig: ConsoleRig) -> Iterator[TestClient]:
    with TestClient(make_app(rig.console), base_url="https://testserver", headers=ZH) as http:
        yield http


def test_problem_pages_in_chinese(rig: ConsoleRig, client: TestClient) -> None:
    assert login(client, "vic").status_code == 200
    page = client.get("/customers/nobody-here")
    assert page.status_code == 404 and "未完成" in page.text
    assert shown(page.text, "problem") == "没有账户 nobody-here"
    assert shown(page.text, "reason") == "unknown_account"
    english = client.get("/customers/nobody-here", headers=EN)
    assert shown(english.text, "problem") == "no account nobody-here"

    token = csrf_of_viewer(client)
    refused = client.post("/devices/gate-1/cmd/reboot", data={"csrf": token})
    assert refused.status_code == 403
    assert shown(refused.text, "problem") == "此操作需要操作员角色"
    assert shown(refused.text, "reason") == "forbidden"
    english = client.post("/devices/gate-1/cmd/reboot", data={"csrf": token}, headers=EN)
    assert shown(english.text, "problem") == "this needs the operator role"


def csrf_of_viewer(http: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', http.get("/").text)
    assert match, "no form with a token on the fleet page"
    return match.group(1)


def test_refusals_of_an_operator_and_an_admin_in_chinese(client: TestClient) -> None:
    assert login(client, "ada").status_code == 200
    token = csrf_of(client)
    shard = client.post("/shards/site-a/cancel", data={"csrf": token})
    assert shard.status_code == 400
    assert shown(shard.text, "problem") == "分片 site-a 没有在迁移"  # a refusal of the host
    assert shown(shard.text, "reason") == "shard_refused"
    preview = client.post(
        "/devices/gate-1/config/preview",
        data={"csrf": token, "config": "[payment]\nfare = -3"},
    )
    assert preview.status_code == 400
    assert shown(preview.text, "message").startswith("此更改：payment.fare = -3")
    erase = client.post("/customers/nobody-here/erase", data={"csrf": token})
    assert shown(erase.text, "problem") == "请输入账户标识以确认删除"
    assert shown(erase.text, "reason") == "erase_unconfirmed"
    command = client.post("/devices/gate-1/cmd/launch", data={"csrf": token})
    assert shown(command.text, "problem") == "没有命令 launch"
    weak = client.post(
        "/operators", data={"csrf": token, "name": "wen", "role": "viewer", "password": "short"}
    )
    assert weak.status_code == 400
    assert shown(weak.text, "message") == "密码须为 10 至 256 个字符"  # an AuthError


def test_a_role_refusal_names_the_command(rig: ConsoleRig, client: TestClient) -> None:
    assert login(client, "olga").status_code == 200
    token = csrf_of_viewer(client)
    page = client.post("/devices/gate-1/cmd/reboot", data={"csrf": token})
    assert page.status_code == 403
    assert shown(page.text, "problem") == "重启 需要管理员角色"
    telemetry(rig, "gate-cmds", interval_s=60.0)
    assert wait_until(lambda: client.get("/devices/gate-cmds").status_code == 200)
    device = client.get("/devices/gate-cmds")  # the commands an operator may send, translated
    assert shown(device.text, "cmd-resync") == "重新同步"
    assert shown(device.text, "cmd-selftest") == "自检"


def test_login_and_an_expired_session_in_chinese(rig: ConsoleRig, client: TestClient) -> None:
    wrong = login(client, "vic", "not the password at all")
    assert wrong.status_code == 401
    assert shown(wrong.text, "message") == "用户名或密码错误"
    assert login(client, "vic").status_code == 200
    assert client.get("/api/fleet").status_code == 200
    rig.console.auth.expire_all("vic")
    api = client.get("/api/fleet")
    assert api.status_code == 401
    assert shown(api.text, "problem") == "会话已过期，请重新登录"
    assert shown(api.text, "reason") == "session_expired"
    assert login(client, "vic").status_code == 200
    rig.console.auth.expire_all("vic")
    page = client.get("/", follow_redirects=True)  # a page goes to the login form
    assert shown(page.text, "message") == "会话已过期，请重新登录。"


def decision_events(device_id: str) -> list[dict[str, Any]]:
    """What a terminal publishes on `events` (device/core/session_*.py Notify, the shell's
    void), and one event of a newer terminal with codes this console has no words for."""
    return [
        event_body(device_id, 1, "session_aborted", reasons=("challenge_unavailable",)),
        event_body(device_id, 2, "auth_fallback", None, ("auth_unavailable", "offline_allowance")),
        event_body(device_id, 3, "void", "voided", ("passage_timeout",)),
        event_body(device_id, 4, "queue_jump", "held", ("crowd_detected",)),
    ]


def coded(page: str) -> list[tuple[str, str]]:
    """(code, its words) of every coded span on a page, in order."""
    found = []
    for code, inner in re.findall(r'<span class="coded" data-code="([^"]*)">(.*?)</span>', page):
        words = re.sub(r"<small>.*?</small>|<code>.*?</code>", "", inner)
        found.append((html.unescape(code), html.unescape(words).strip()))
    return found


def test_a_terminals_events_in_words(rig: ConsoleRig, client: TestClient) -> None:
    events(rig, "gate-words", decision_events("gate-words"))
    assert login(client, "vic").status_code == 200
    assert wait_until(lambda: len(rig.console.history.events("gate-words")) == 4)
    page = client.get("/devices/gate-words").text
    shown = coded(page)
    for code, words in (
        ("session_aborted", "付款前尝试已结束"),
        ("challenge_unavailable", "无法判定光线挑战"),
        ("offline_allowance", "离线：离线额度不足"),
        ("void", "已向主机报告作废"),
        ("voided", "已作废（已退款）"),
        ("passage_timeout", "无人通过闸门：本次乘车已作废"),
    ):
        assert (code, words) in shown, (code, shown)
    assert "<code>challenge_unavailable</code>" in page  # the code stays, for support
    # a newer terminal's codes: shown as they are
    for code in ("queue_jump", "held", "crowd_detected"):
        assert (code, "") in shown, (code, shown)
    english = coded(client.get("/devices/gate-words", headers=EN).text)
    assert ("challenge_unavailable", "Light challenge could not be judged") in english
    assert ("offline_allowance", "Offline: the offline allowance does not cover it") in english


def test_ledger_rows_in_words(rig: ConsoleRig, client: TestClient) -> None:
    rig.console.store.execute(
        "INSERT INTO transactions (tx_id, device_id, token, amount, status, result, body,"
        " received_at, host_id) VALUES (?, 'gate-ledger', 'tok', 250, ?, 'recorded', '{}', ?,"
        " 'host-a')",
        ("0192f0c4-6a53-7cc1-b3f2-5d1e2a3b4c5d", "voided", time.time()),
    )
    assert login(client, "vic").status_code == 200
    shown = coded(client.get("/transactions?q=gate-ledger").text)
    assert shown == [("voided", "已作废（已退款）"), ("recorded", "已入账")]
    english = coded(client.get("/transactions?q=gate-ledger", headers=EN).text)
    assert english == [("voided", "Voided (refunded)"), ("recorded", "Recorded")]


def alert_reasons(page: str, table: str) -> dict[str, str]:
    """Terminal -> the Reason cell of each row of the alerts page's `table`."""
    body = re.search(rf'<table id="{table}".*?</table>', page, re.S)
    assert body, f"no #{table} on the page"
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>|<tr data-[^>]*>(.*?)</tr>", body[0], re.S):
        cells = re.findall(r'<td data-label="([^"]*)"[^>]*>(.*?)</td>', row[0] or row[1], re.S)
        named = {html.unescape(k): re.sub(r"<[^>]+>", "", v) for k, v in cells}
        terminal = named.get("终端", named.get("Terminal"))
        reason = named.get("原因", named.get("Reason"))
        if terminal is not None and reason is not None:
            found[html.unescape(terminal).strip()] = html.unescape(reason).strip()
    return found


def test_alert_reasons_in_the_readers_language(rig: ConsoleRig, client: TestClient) -> None:
    """An alert raised by the console (a terminal gone silent) reads in Chinese on the
    alerts page and in /api/alerts; the English it was raised with stays in `reason`, what
    the deliveries carry; an alert stored before its parts were kept reads as stored."""
    rig.console.store.execute(
        "INSERT INTO alerts (device_id, kind, reason, raised_at, cleared_at)"
        " VALUES ('gate-old', 'offline', 'connection lost (last will)', 1.0, 2.0)"
    )
    telemetry(rig, "gate-alert", interval_s=1.0)  # one report, then silence: stale
    assert wait_until(lambda: "gate-alert" in rig.console.alerts.open(), timeout=30)
    assert login(client, "vic").status_code == 200
    page = client.get("/alerts").text
    reason = alert_reasons(page, "open-alerts")["gate-alert"]
    assert re.fullmatch(r"\d+ 秒没有遥测（3 个上报间隔为 3 秒）", reason), reason
    history = alert_reasons(page, "alert-history")
    assert "秒没有遥测" in history["gate-alert"]
    assert history["gate-old"] == "connection lost (last will)"  # from before: as stored
    api = client.get("/api/alerts").json()
    mine = next(a for a in api["open"] if a["device_id"] == "gate-alert")
    assert mine["reason"].startswith("no telemetry for ")  # the English, as delivered
    assert "秒没有遥测" in mine["reason_shown"] and "reason_parts" not in mine

    english = client.get("/alerts", headers=EN).text
    reason = alert_reasons(english, "open-alerts")["gate-alert"]
    assert re.fullmatch(r"no telemetry for \d+ s \(3 intervals are 3 s\)", reason), reason


def test_audit_actions_in_words(rig: ConsoleRig, client: TestClient) -> None:
    """The audit log's actions in words, the code beside them; an action of another host
    version as it is."""
    assert login(client, "vic", "not the password at all").status_code == 401
    rig.console.store.audit("cli", "purge_everything", "x", "cli")
    assert login(client, "ada").status_code == 200
    page = client.get("/audit").text
    found = coded(page)
    for code, words in (
        ("login", "已登录"),
        ("login_refused", "登录被拒绝"),
        ("purge_everything", ""),
    ):
        assert (code, words) in found, (code, found)
    english = coded(client.get("/audit", headers=EN).text)
    assert ("login_refused", "Login refused") in english
    assert ("login", "Logged in") in english
    # the search still finds an action by its code
    searched = [c for c, _ in coded(client.get("/audit?q=login_refused").text)]
    assert searched and set(searched) == {"login_refused"}


def test_a_config_refusal_in_the_terminals_own_words(rig: ConsoleRig, client: TestClient) -> None:
    """config/state's reason is the terminal's free text (no code on the wire): the status
    is translated, the reason shown as it came, on the page and in what its script gets."""
    device = "gate-cfg"
    config = load_config(rig.terminal_config(device))  # registered: its signature counts
    key = load_signing_key(config.device.data_dir / config.store.signing_key_file)
    version = rig.console.send_config("ada", device, {"device": {"id": "gate-other"}}, "test")
    reason = "; ".join(refusals({"device": {"id": "gate-other"}}, {}))  # the terminal's own
    assert reason == "device.id cannot change remotely"
    state = {
        "v": 1,
        "device_id": device,
        "version": version,
        "status": "refused",
        "reason": reason,
        "ts": time.time(),
    }
    publish(
        rig, topics(rig, device).config_state, {**state, "signature": sign_document(state, key)}
    )
    assert wait_until(lambda: rig.console.configs(device)[0]["status"] == "refused")
    assert login(client, "vic").status_code == 200
    page = client.get(f"/devices/{device}").text
    assert shown(page, "config-state") == f"版本 {version}：已拒绝 ({reason})"
    table = re.search(r'<table id="configs">.*?</table>', page, re.S)
    assert table and f"已拒绝: {reason}</td>" in table[0]
    detail = rig.console.fleet.detail(device)  # what the page's stream sends its script
    assert detail and detail["config_state"]["reason"] == reason
    english = client.get(f"/devices/{device}", headers=EN).text
    assert shown(english, "config-state") == f"version {version}: refused ({reason})"


def test_the_device_page_names_the_embedder_in_use(rig: ConsoleRig, client: TestClient) -> None:
    """The terminal reports every shipped model and, apart, the embedder it matches with:
    the page says which one that is instead of listing it twice."""
    models = {
        "embedder_dlib": "dlib-resnet-v1-int8-1",
        "embedder_mobilefacenet": "mobilefacenet-sirius-v1-float16-1",
        "embedder": "mobilefacenet-sirius-v1-float16-1",
    }
    telemetry(rig, "gate-models", versions={"software": "blinkpay 0.1.0", "models": models})
    assert login(client, "vic").status_code == 200
    assert wait_until(lambda: client.get("/devices/gate-models").status_code == 200)
    page = client.get("/devices/gate-models").text
    assert shown(page, "embedder-in-use") == "mobilefacenet-sirius-v1-float16-1"
    assert "特征模型" in page and page.count("mobilefacenet-sirius-v1-float16-1") == 2
    assert "embedder_dlib dlib-resnet-v1-int8-1" in page


def test_forged_messages_at_a_terminal_raise_an_alert(rig: ConsoleRig, client: TestClient) -> None:
    """A terminal's telemetry says it refused messages with a bad signature since its last
    report (over the real broker): the console raises a `degraded` alert saying so."""
    device = "gate-forged"
    telemetry(rig, device, seq=1, interval_s=60.0)
    telemetry(rig, device, seq=2, interval_s=60.0, rejected={"bad_signature": 12})
    assert wait_until(lambda: device in rig.console.alerts.open(), timeout=30)
    alert = rig.console.alerts.open()[device]
    assert alert["kind"] == "degraded"
    assert alert["reason"] == "forged or misdirected messages refused since the last report"
    assert login(client, "vic").status_code == 200
    reason = alert_reasons(client.get("/alerts").text, "open-alerts")[device]
    assert reason == "自上次上报以来拒收了伪造或错投的消息"
