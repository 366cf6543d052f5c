"""A command's request id arriving again (the console re-sends a delivered command whose
result it never got), against a real mosquitto: never run twice; while it runs, no answer
until it finishes; once it ran, the recorded result again; after a stop interrupted it,
`failed` with why; an id from a state file without outcomes, refused as before; one that
found the terminal too busy to take it, `failed` with why, also when it comes again."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from device.net.remote_control import BUSY, INTERRUPTED, MAX_HELD, CommandOutcome
from device.net.remote_state import load_state
from device.net.service import STATE_FILE
from tests.conftest import Broker
from tests.net.conftest import BackendKeys, Terminal, make_host, make_terminal
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt

WAIT_S = 30.0


class SlowSelftest:
    """A selftest that runs until released, counting its runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, args: dict[str, Any]) -> CommandOutcome:
        self.runs += 1
        self.started.set()
        self.release.wait(WAIT_S)
        return CommandOutcome(True, "12 checks, all ok", {"ok": True, "checks": []})


def started(broker: Broker, keys: BackendKeys, folder: Path, selftest: SlowSelftest) -> Terminal:
    terminal = make_terminal(broker.url, keys, folder)
    terminal.net.register_command("selftest", selftest)
    terminal.net.start()
    assert terminal.net.link.wait_connected(WAIT_S)
    return terminal


def test_a_repeat_while_running_waits_then_gets_the_recorded_result(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    selftest = SlowSelftest()
    terminal = started(broker, backend_keys, tmp_path / "dev", selftest)
    terminal.register(host)
    rejects = terminal.net.link.rejects
    try:
        request = host.send_command("gate-01", "selftest")
        assert selftest.started.wait(WAIT_S)
        assert host.publish_command("gate-01", "selftest", request)  # newly signed, same id
        assert wait_until(lambda: rejects["repeat"] == 1, WAIT_S)
        assert host.command_results == []  # still running: its one result follows
        selftest.release.set()
        assert host.wait_for(lambda h: len(h.command_results) == 1, WAIT_S)
        first = host.command_results[0]
        assert first["request_id"] == request and first["detail"] == "12 checks, all ok"

        assert host.publish_command("gate-01", "selftest", request)
        assert host.wait_for(lambda h: len(h.command_results) == 2, WAIT_S)
        assert host.command_results[1] == first and rejects["repeat"] == 2
        assert rejects["replay"] == 0  # the console's re-sends are not counted as an attack
        assert selftest.runs == 1
        _, seen = load_state(tmp_path / "dev" / STATE_FILE)
        assert seen[request].outcome == {
            "ok": True,
            "detail": "12 checks, all ok",
            "result": {"ok": True, "checks": []},
        }
    finally:
        selftest.release.set()
        terminal.stop()
        host.stop()


def test_a_run_a_stop_interrupted_is_answered_failed_and_never_run_again(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    folder = tmp_path / "dev"
    folder.mkdir()
    legacy = "1" * 32  # from a terminal that kept no outcomes: it ran, refused as before
    state = {"config_version": 0, "seen": {legacy: time.time()}}
    (folder / STATE_FILE).write_text(json.dumps(state))
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    selftest = SlowSelftest()
    terminal = started(broker, backend_keys, folder, selftest)
    terminal.register(host)
    try:
        request = host.send_command("gate-01", "selftest")
        assert selftest.started.wait(WAIT_S)
    finally:
        # Stopped mid-command, as by a kill: the run never finishes on this terminal.
        terminal.net.stop(timeout=0.5)
        terminal.store.close()
    _, seen = load_state(folder / STATE_FILE)
    assert seen[request].outcome is None and seen[legacy].legacy

    again = started(broker, backend_keys, folder, selftest)
    rejects = again.net.link.rejects
    try:
        assert host.publish_command("gate-01", "selftest", request)  # the console re-sends
        assert host.wait_for(lambda h: len(h.command_results) == 1, WAIT_S)
        answer = host.command_results[0]
        assert answer["request_id"] == request and not answer["ok"]
        assert answer["detail"] == INTERRUPTED and "not run again" in answer["detail"]
        assert host.publish_command("gate-01", "selftest", legacy)
        assert wait_until(lambda: rejects["replay"] == 1, WAIT_S)  # no outcome kept: refused
        assert rejects["repeat"] == 1
        assert host.publish_command("gate-01", "selftest", request)  # the same answer again
        assert host.wait_for(lambda h: len(h.command_results) == 2, WAIT_S)
        assert host.command_results[1] == answer
        assert [r["request_id"] for r in host.command_results] == [request, request]
        assert selftest.runs == 1  # the interrupted run only
    finally:
        selftest.release.set()
        again.stop()
        host.stop()


def test_a_command_the_terminal_is_too_busy_to_take_is_answered_failed(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev", hold_remote=True)
    terminal.register(host)
    runs: list[dict[str, Any]] = []

    def selftest(args: dict[str, Any]) -> CommandOutcome:
        runs.append(args)
        return CommandOutcome(True, "all ok")

    terminal.net.register_command("selftest", selftest)
    rejects = terminal.net.link.rejects
    try:
        terminal.net.start()
        assert terminal.net.link.wait_connected(WAIT_S)
        # Starting (its handlers not in place yet), it holds at most MAX_HELD requests.
        held = [host.send_command("gate-01", "selftest") for _ in range(MAX_HELD)]
        assert wait_until(lambda: terminal.net.remote.held == MAX_HELD, WAIT_S)
        busy = host.send_command("gate-01", "selftest")
        assert host.wait_for(lambda h: len(h.command_results) == 1, WAIT_S)
        answer = host.command_results[0]
        assert (answer["request_id"], answer["ok"], answer["detail"]) == (busy, False, BUSY)
        assert rejects["queue_full"] == 1

        terminal.net.remote.release()
        assert host.wait_for(lambda h: len(h.command_results) == MAX_HELD + 1, WAIT_S)
        assert {r["request_id"] for r in host.command_results[1:]} == set(held)
        assert host.publish_command("gate-01", "selftest", busy)  # sent again: same answer
        assert host.wait_for(lambda h: len(h.command_results) == MAX_HELD + 2, WAIT_S)
        assert host.command_results[-1] == answer and rejects["repeat"] == 1
        assert len(runs) == MAX_HELD  # the busy one never ran
    finally:
        terminal.stop()
        host.stop()
