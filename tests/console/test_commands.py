"""The command lifecycle without a broker: pending, delivered, done or failed, timed out,
expired, refused; a returning terminal gets its pending commands once."""

from __future__ import annotations

import pytest

from backend.console.commands import CommandRefused, Commands
from backend.console.settings import ConsoleSettings
from backend.console.store import ConsoleStore
from backend.db import HostDb

T0 = 1_800_000_000.0


class Terminal:
    def __init__(self) -> None:
        self.online = False
        self.broker_takes = True
        self.published: list[tuple[str, str, str]] = []

    def publish(self, device_id: str, name: str, request_id: str) -> bool:
        if self.broker_takes:
            self.published.append((device_id, name, request_id))
        return self.broker_takes


def commands(host_db_url: str, terminal: Terminal, **settings: float) -> Commands:
    store = ConsoleStore(HostDb(host_db_url))
    return Commands(
        store, ConsoleSettings(**settings), terminal.publish, lambda _d: terminal.online
    )


def test_online_delivered_then_done_or_failed(host_db_url: str) -> None:
    terminal = Terminal()
    terminal.online = True
    c = commands(host_db_url, terminal)
    sent = c.send("olga", "g1", "resync", now=T0)
    assert sent["status"] == "delivered" and sent["operator"] == "olga"
    assert terminal.published == [("g1", "resync", sent["request_id"])]
    c.on_result({"device_id": "g1", "request_id": sent["request_id"], "ok": True, "detail": "ok"})
    assert c.get(sent["request_id"])["status"] == "done"
    other = c.send("olga", "g1", "selftest", now=T0 + 1)
    c.on_result({"device_id": "g1", "request_id": other["request_id"], "ok": False, "detail": "x"})
    assert c.get(other["request_id"])["status"] == "failed"
    assert [r["name"] for r in c.of_device("g1")] == ["selftest", "resync"]  # newest first
    # a result naming another terminal changes nothing
    c.on_result({"device_id": "g2", "request_id": sent["request_id"], "ok": False, "detail": ""})
    assert c.get(sent["request_id"])["status"] == "done"


def test_offline_waits_then_goes_once_when_the_terminal_returns(host_db_url: str) -> None:
    terminal = Terminal()
    c = commands(host_db_url, terminal, command_ttl_s=60)
    sent = c.send("olga", "g1", "resync", now=T0)
    assert sent["status"] == "pending" and terminal.published == []
    assert c.on_status("g1", "offline", now=T0 + 5) == 0
    assert c.on_status("g1", "online", now=T0 + 10) == 1
    assert c.get(sent["request_id"])["status"] == "delivered"
    assert c.on_status("g1", "online", now=T0 + 11) == 0  # once
    assert len(terminal.published) == 1


def test_a_broker_that_does_not_take_it_leaves_it_pending(host_db_url: str) -> None:
    terminal = Terminal()
    terminal.online, terminal.broker_takes = True, False
    c = commands(host_db_url, terminal)
    assert c.send("olga", "g1", "resync", now=T0)["status"] == "pending"
    terminal.broker_takes = True
    assert c.on_status("g1", "online", now=T0 + 1) == 1


def test_expired_and_timed_out(host_db_url: str) -> None:
    terminal = Terminal()
    c = commands(host_db_url, terminal, command_ttl_s=60, command_timeout_s=30)
    waiting = c.send("olga", "g1", "resync", now=T0)
    terminal.online = True
    delivered = c.send("olga", "g2", "resync", now=T0)
    assert c.tick(now=T0 + 20) == 0
    assert c.tick(now=T0 + 61) == 2
    assert c.get(waiting["request_id"])["status"] == "expired"
    assert c.get(delivered["request_id"])["status"] == "timed_out"
    assert c.on_status("g1", "online", now=T0 + 62) == 0  # an expired one never goes
    # a late result still lands
    c.on_result({"device_id": "g2", "request_id": delivered["request_id"], "ok": True})
    assert c.get(delivered["request_id"])["status"] == "done"


def test_refused_when_commands_do_not_wait(host_db_url: str) -> None:
    c = commands(host_db_url, Terminal(), command_ttl_s=0)
    with pytest.raises(CommandRefused, match="not online"):
        c.send("olga", "g1", "resync", now=T0)
    with pytest.raises(CommandRefused, match="unknown command"):
        c.send("olga", "g1", "format-disk", now=T0)
    assert c.of_device("g1") == []
