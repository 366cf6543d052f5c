"""Alerts from the computed health: raised once, cleared on recovery or a change of kind,
kept in the store across a restart, and delivered to a loopback webhook (retried after a
failure) and a local SMTP sink."""

from __future__ import annotations

import pytest

from backend.console.alerts import BROKER_DOWN, CONSOLE, Alerts
from backend.console.delivery import Delivery
from backend.console.settings import ConsoleSettings, SmtpSettings
from backend.console.store import ConsoleStore
from backend.db import HostDb
from tests.console.sinks import SmtpSink, webhook_sink

UP = {"up": True, "down_since": None}


def store(host_db_url: str) -> ConsoleStore:
    return ConsoleStore(HostDb(host_db_url))


def test_raise_once_change_kind_and_clear(host_db_url: str) -> None:
    alerts = Alerts(store(host_db_url))
    changes = alerts.evaluate({"g1": ("stale", "no telemetry for 40 s"), "g2": ("ok", "")}, UP)
    assert [(e, a["device_id"], a["kind"]) for e, a in changes] == [("raised", "g1", "stale")]
    # the same kind with another reason is the same alert
    assert alerts.evaluate({"g1": ("stale", "no telemetry for 41 s")}, UP) == []
    changes = alerts.evaluate({"g1": ("offline", "connection lost")}, UP)
    assert [(e, a["kind"]) for e, a in changes] == [("cleared", "stale"), ("raised", "offline")]
    # a terminal the console no longer lists keeps its alert; ok clears it
    assert alerts.evaluate({}, UP) == []
    changes = alerts.evaluate({"g1": ("ok", "")}, UP)
    assert [(e, a["kind"]) for e, a in changes] == [("cleared", "offline")]
    history = alerts.history()
    assert [a["kind"] for a in history] == ["offline", "stale"]  # newest first
    assert all(a["cleared_at"] is not None for a in history)


def test_open_alerts_survive_a_restart(host_db_url: str) -> None:
    first = Alerts(store(host_db_url))
    first.evaluate({"g1": ("fault", "ledger: rows missing")}, UP)
    first.store.db.close()
    second = Alerts(store(host_db_url))
    assert second.evaluate({"g1": ("fault", "ledger: rows missing")}, UP) == []  # not again
    assert second.open()["g1"]["kind"] == "fault"


def test_the_broker_link_is_an_alert_of_its_own(host_db_url: str) -> None:
    alerts = Alerts(store(host_db_url))
    changes = alerts.evaluate({}, {"up": False, "down_since": 1.0})
    assert [(a["device_id"], a["kind"]) for _, a in changes] == [(CONSOLE, BROKER_DOWN)]
    assert [e for e, _ in alerts.evaluate({}, UP)] == ["cleared"]


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
                alerts.evaluate({"g1": ("fault", "ledger: 3 rows missing")}, UP)
                got = hook.wait_for(lambda r: len(r) >= 1)
                assert got[0]["event"] == "raised" and got[0]["console"] == "host-a"
                assert got[0]["alert"]["kind"] == "fault"
                assert got[0]["alert"]["reason"] == "ledger: 3 rows missing"
                assert hook.failed == 2  # two 500s, then delivered on the third try
                mail = smtp.wait_for(1)[0]
                assert mail["Subject"] == "[blinkpay] raised: g1 fault"
                assert "ledger: 3 rows missing" in mail.get_payload()
                alerts.evaluate({"g1": ("ok", "")}, UP)
                got = hook.wait_for(lambda r: len(r) >= 2)
                assert got[1]["event"] == "cleared"
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
