"""Alerts from the computed health: raised once, cleared on recovery or a change of kind,
kept in the store across a restart, their reason in the reader's language (an alert from
before migration 0010 as it was stored), and delivered to a loopback webhook (retried after
a failure) and a local SMTP sink, in English, as before."""

from __future__ import annotations

import pytest

from backend.console import i18n
from backend.console.alerts import BROKER_DOWN, CONSOLE, DELIVERED, Alerts, reason_shown
from backend.console.delivery import Delivery
from backend.console.health import TERMINAL_TEXT, Health
from backend.console.settings import ConsoleSettings, SmtpSettings
from backend.console.store import ConsoleStore
from backend.db import HostDb
from tests.console.sinks import SmtpSink, webhook_sink

UP = {"up": True, "down_since": None}
EN = i18n.gettext("en")
ZH = i18n.gettext("zh_CN")
SILENT = "no telemetry for {seconds} s (3 intervals are {limit} s)"


def h(kind: str, message: str = "", **args: str) -> Health:
    """A computed health of one part (none for ok)."""
    return Health(kind, ((message, args),) if message else ())


def store(host_db_url: str) -> ConsoleStore:
    return ConsoleStore(HostDb(host_db_url))


def test_raise_once_change_kind_and_clear(host_db_url: str) -> None:
    alerts = Alerts(store(host_db_url))
    changes = alerts.evaluate(
        {"g1": h("stale", SILENT, seconds="40", limit="90"), "g2": h("ok")}, UP
    )
    assert [(e, a["device_id"], a["kind"]) for e, a in changes] == [("raised", "g1", "stale")]
    # the same kind with another reason is the same alert
    assert alerts.evaluate({"g1": h("stale", SILENT, seconds="41", limit="90")}, UP) == []
    changes = alerts.evaluate({"g1": h("offline", "connection lost (last will)")}, UP)
    assert [(e, a["kind"]) for e, a in changes] == [("cleared", "stale"), ("raised", "offline")]
    # a terminal the console no longer lists keeps its alert; ok clears it
    assert alerts.evaluate({}, UP) == []
    changes = alerts.evaluate({"g1": h("ok")}, UP)
    assert [(e, a["kind"]) for e, a in changes] == [("cleared", "offline")]
    history = alerts.history()
    assert [a["kind"] for a in history] == ["offline", "stale"]  # newest first
    assert all(a["cleared_at"] is not None for a in history)


def test_open_alerts_survive_a_restart(host_db_url: str) -> None:
    first = Alerts(store(host_db_url))
    first.evaluate({"g1": h("fault", TERMINAL_TEXT, text="ledger: rows missing")}, UP)
    first.store.db.close()
    second = Alerts(store(host_db_url))
    assert (
        second.evaluate({"g1": h("fault", TERMINAL_TEXT, text="ledger: rows missing")}, UP) == []
    )  # not again
    assert second.open()["g1"]["kind"] == "fault"


def test_the_broker_link_is_an_alert_of_its_own(host_db_url: str) -> None:
    alerts = Alerts(store(host_db_url))
    changes = alerts.evaluate({}, {"up": False, "down_since": 1.0})
    assert [(a["device_id"], a["kind"]) for _, a in changes] == [(CONSOLE, BROKER_DOWN)]
    assert [e for e, _ in alerts.evaluate({}, UP)] == ["cleared"]
    stored = alerts.history()[0]
    assert stored["reason"] == "the console's broker link is down"  # as the deliveries say
    assert reason_shown(stored, ZH) == "控制台与消息代理的连接中断"


def test_a_reason_in_the_readers_language_the_english_kept(host_db_url: str) -> None:
    alerts = Alerts(store(host_db_url))
    degraded = Health(
        "degraded", (("outbox growing", {}), ("low frame rate ({fps} fps)", {"fps": "2.5"}))
    )
    alerts.evaluate(
        {
            "g1": h("stale", SILENT, seconds="95", limit="90"),
            "g2": degraded,
            "g3": h("fault", TERMINAL_TEXT, text="ledger: 3 committed ledger rows are missing"),
        },
        UP,
    )
    rows = alerts.open()
    assert rows["g1"]["reason"] == "no telemetry for 95 s (3 intervals are 90 s)"
    assert reason_shown(rows["g1"], ZH) == "95 秒没有遥测（3 个上报间隔为 90 秒）"
    assert reason_shown(rows["g1"], EN) == rows["g1"]["reason"]
    assert rows["g2"]["reason"] == "outbox growing, low frame rate (2.5 fps)"
    chinese = reason_shown(rows["g2"], ZH)
    assert "2.5" in chinese and "outbox" not in chinese and "frame" not in chinese
    # the terminal's own words are shown as they came, in any language
    assert reason_shown(rows["g3"], ZH) == "ledger: 3 committed ledger rows are missing"


def test_an_alert_from_before_its_parts_were_kept_is_shown_as_stored(host_db_url: str) -> None:
    """Rows raised before migration 0010 (no parts), or with parts that cannot be read or do
    not fit their message: the English reason, never an error."""
    alerts = Alerts(store(host_db_url))
    for device_id, parts in (
        ("old", None),
        ("junk", "{not json"),
        ("shape", '[["a", "b"]]'),
        ("unfit", '[["no telemetry for {seconds} s (3 intervals are {limit} s)", {}]]'),
        ("odd", '[["{0} and {a.b}", {"0": "x", "a.b": "y"}]]'),
        ("empty", "[]"),
    ):
        alerts.store.execute(
            "INSERT INTO alerts (device_id, kind, reason, reason_parts, raised_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (device_id, "stale", "no telemetry for 40 s (3 intervals are 90 s)", parts, 1.0),
        )
    for alert in alerts.history():
        assert reason_shown(alert, ZH) == "no telemetry for 40 s (3 intervals are 90 s)"


def test_webhook_retried_with_backoff_and_mail_sent(host_db_url: str) -> None:
    pytest.importorskip("aiosmtpd", reason="pip install aiosmtpd (the dev extra)")
    the_store = store(host_db_url)
    smtp = SmtpSink()
    try:
        with webhook_sink(fail_first=2) as hook:
            settings = ConsoleSettings(
                webhooks=[hook.url],
                smtp=SmtpSettings(
                    host="127.0.0.1",
                    port=smtp.port,
                    starttls=False,
                    mail_from="console@example.org",
                    mail_to=["ops@example.org"],
                ),
            )
            delivery = Delivery(the_store, settings, "host-a")
            try:
                alerts = Alerts(the_store, delivery.notify)
                alerts.evaluate(
                    {"g1": h("fault", TERMINAL_TEXT, text="ledger: 3 rows missing")}, UP
                )
                got = hook.wait_for(lambda r: len(r) >= 1)
                assert got[0]["event"] == "raised" and got[0]["console"] == "host-a"
                assert got[0]["alert"]["kind"] == "fault"
                assert got[0]["alert"]["reason"] == "ledger: 3 rows missing"
                assert sorted(got[0]["alert"]) == sorted(DELIVERED)  # the body as before 0010
                assert hook.failed == 2  # two 500s, then delivered on the third try
                mail = smtp.wait_for(1)[0]
                assert mail["Subject"] == "[blinkpay] raised: g1 fault"
                assert "ledger: 3 rows missing" in mail.get_payload()
                alerts.evaluate({"g1": h("ok")}, UP)
                got = hook.wait_for(lambda r: len(r) >= 2)
                assert got[1]["event"] == "cleared"
                assert got[1]["alert"]["reason"] == "ledger: 3 rows missing"
                assert sorted(got[1]["alert"]) == sorted(DELIVERED)
            finally:
                delivery.stop()
    finally:
        smtp.close()
    deliveries = Alerts(the_store).history()[0]["deliveries"]
    webhook = [d for d in deliveries if d["target"] == hook.url]
    assert [(d["event"], d["status"], d["attempts"]) for d in webhook] == [
        ("raised", "delivered", 3),
        ("cleared", "delivered", 1),
    ]
