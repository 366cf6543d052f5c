"""The command lifecycle without a broker: pending, delivered, done or failed, timed out,
expired, refused; a returning terminal gets its pending commands, and its delivered ones
without a result again (counted, the timeout from the last delivery), until a result lands."""

from __future__ import annotations

import pytest

from backend.console.commands import REDELIVER_WITHIN_S, CommandRefused, Commands
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
    row = c.get(sent["request_id"])
    assert (row["status"], row["deliveries"], row["delivered_at"]) == ("delivered", 1, T0 + 10)
    c.on_result({"device_id": "g1", "request_id": sent["request_id"], "ok": True, "detail": ""})
    assert c.on_status("g1", "online", now=T0 + 11) == 0  # answered: it never goes again
    assert len(terminal.published) == 1


def test_a_delivered_command_without_a_result_goes_again_when_the_terminal_returns(
    host_db_url: str,
) -> None:
    terminal = Terminal()
    terminal.online = True
    c = commands(host_db_url, terminal, command_timeout_s=30)
    sent = c.send("olga", "g1", "gate-test", now=T0)
    request = sent["request_id"]
    assert (sent["status"], sent["deliveries"]) == ("delivered", 1)
    assert c.on_status("g1", "offline", now=T0 + 5) == 0
    terminal.broker_takes = False  # the console's link drops as it goes: it stays as it was
    assert c.on_status("g1", "online", now=T0 + 9) == 0
    assert (c.get(request)["deliveries"], c.get(request)["delivered_at"]) == (1, T0)
    terminal.broker_takes = True
    assert c.on_status("g1", "online", now=T0 + 20) == 1  # no result yet: sent again
    row = c.get(request)
    assert (row["status"], row["deliveries"], row["delivered_at"]) == ("delivered", 2, T0 + 20)
    assert terminal.published == [("g1", "gate-test", request)] * 2  # the same request id
    # the timeout counts from the last delivery: 35 s after the first, 15 after the last
    assert c.tick(now=T0 + 35) == 0
    c.on_result({"device_id": "g1", "request_id": request, "ok": True, "detail": "pulsed"})
    row = c.get(request)
    assert (row["status"], row["detail"], row["deliveries"]) == ("done", "pulsed", 2)
    assert c.on_status("g1", "online", now=T0 + 40) == 0


def test_a_command_past_its_timeout_or_too_old_does_not_go_again(host_db_url: str) -> None:
    terminal = Terminal()
    terminal.online = True
    c = commands(host_db_url, terminal, command_timeout_s=30)
    sent = c.send("olga", "g1", "resync", now=T0)
    assert c.on_status("g1", "online", now=T0 + 31) == 0  # its time ran out
    assert c.tick(now=T0 + 31) == 1 and c.get(sent["request_id"])["status"] == "timed_out"
    assert c.on_status("g1", "online", now=T0 + 32) == 0
    assert len(terminal.published) == 1

    # A command whose terminal came back after most of a day waiting: it went out then, but
    # it is too old to go again (the terminal might have forgotten its request id).
    late = REDELIVER_WITHIN_S - 100
    terminal.online = False
    slow = commands(host_db_url, terminal, command_ttl_s=REDELIVER_WITHIN_S, command_timeout_s=1e6)
    old = slow.send("olga", "g2", "resync", now=T0)
    assert slow.on_status("g2", "online", now=T0 + late) == 1
    assert slow.on_status("g2", "online", now=T0 + late + 50) == 1  # still young enough
    assert slow.on_status("g2", "online", now=T0 + REDELIVER_WITHIN_S + 1) == 0
    assert slow.get(old["request_id"])["deliveries"] == 2


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
