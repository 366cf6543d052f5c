"""A command whose result is lost is not left to time out, and never runs twice, with real
`blinkpay run --sim` terminals, a real mosquitto and real partitions in front of it:

- the console's broker link is cut while a terminal runs a gate test (the console keeps no
  session, so the result never reaches it); when the link is back, the console sees the
  terminal `online` again and sends the command again, and the terminal answers with the
  result it recorded instead of pulsing the relay again;
- a terminal runs a remote reboot while its own link is cut: the result is lost and the
  process exits (75, for systemd to start it again); started again, it answers the command
  (sent again) with the result it recorded and does not restart a second time."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from backend.console.app import make_app
from device.remote.loop_hooks import RESTART_EXIT_CODE
from tests.conftest import Broker, mosquitto_available
from tests.console.conftest import ConsoleRig, open_rig
from tests.console.partition import Partition
from tests.console.test_hardening import TestClient, login
from tests.net.test_e2e import wait_until
from tests.net.test_remote_run import Watcher

pytestmark = pytest.mark.mqtt

DEVICE = "gate-lost"
REBOOTED = "gate-reboot"
WAIT_S = 120.0  # model loading on a busy 2-core machine; never a timing assertion


@pytest.fixture
def rig() -> Iterator[tuple[ConsoleRig, Partition]]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    made: list[Partition] = []

    def via(broker: Broker) -> int:
        made.append(Partition(broker.host, broker.port))
        return made[0].port

    try:
        with open_rig({"command_timeout_s": 600.0}, console_via=via) as running:
            yield running, made[0]
    finally:
        for partition in made:
            partition.close()


@pytest.fixture
def watcher(rig: tuple[ConsoleRig, Partition]) -> Iterator[Watcher]:
    """Everything the terminal publishes, seen on the broker itself (not through the cut)."""
    broker = rig[0].broker
    watcher = Watcher()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="redelivery-watcher")
    client.on_message = watcher.on_message
    client.connect(broker.host, broker.port)
    client.subscribe(f"{rig[0].config.mqtt.prefix}/dev/+/#", qos=1)
    client.loop_start()
    yield watcher
    client.loop_stop()
    client.disconnect()


def published(watcher: Watcher, device: str, suffix: str, **fields: Any) -> list[dict[str, Any]]:
    return [
        p
        for t, p in list(watcher.seen)
        if t.endswith(f"/dev/{device}/{suffix}") and all(p.get(k) == v for k, v in fields.items())
    ]


def wait_running(watcher: Watcher, device: str, boots: set[str]) -> str:
    """A new boot of the terminal whose loop and camera run; returns its boot id."""
    report = watcher.wait_for(
        lambda t, p: (
            t.endswith(f"/dev/{device}/telemetry")
            and p.get("fps", 0) >= 5
            and p["boot_id"] not in boots
        ),
        WAIT_S,
    )
    assert report is not None, f"{device} did not start"
    return str(report["boot_id"])


def test_a_result_lost_on_the_way_lands_after_the_terminal_is_back_and_it_ran_once(
    rig: tuple[ConsoleRig, Partition], watcher: Watcher
) -> None:
    rig_, partition = rig
    console = rig_.console
    # A keepalive longer than the freeze below: the broker keeps its connection meanwhile.
    config = rig_.terminal_config(DEVICE, mqtt={"keepalive_s": 60})
    terminal = rig_.start_terminal("run", config)
    wait_running(watcher, DEVICE, set())
    assert wait_until(lambda: console.fleet.state_of(DEVICE) == "online", WAIT_S)

    # Frozen, the terminal cannot answer before the console's link is cut.
    terminal.send_signal(signal.SIGSTOP)
    try:
        request = console.send_command("olga", DEVICE, "gate-test", "test")
        sent = console.commands.get(request)
        assert sent is not None and (sent["status"], sent["deliveries"]) == ("delivered", 1)
        assert console.host.link.flush(WAIT_S)  # the broker has it
        partition.cut()
        assert wait_until(lambda: not console.host.link.connected, WAIT_S)
    finally:
        terminal.send_signal(signal.SIGCONT)

    # It runs the gate test and publishes the result, which the console does not get.
    first = watcher.wait_for(
        lambda t, p: t.endswith(f"/{DEVICE}/cmd/gate-test/result") and p["request_id"] == request
    )
    assert first is not None and first["ok"], first
    assert console.commands.get(request)["status"] == "delivered"  # type: ignore[index]

    partition.heal()  # the console is back, sees the terminal online, and sends it again
    assert wait_until(
        lambda: console.commands.get(request)["status"] == "done",  # type: ignore[index]
        WAIT_S,
    ), console.commands.get(request)
    done = console.commands.get(request)
    assert done is not None
    assert done["detail"] == first["detail"] and done["deliveries"] == 2, done

    results = lambda: published(watcher, DEVICE, "cmd/gate-test/result", request_id=request)  # noqa: E731
    assert wait_until(lambda: len(results()) >= 2, WAIT_S)  # the recorded one, again
    assert {(r["ok"], r["detail"], str(r["result"])) for r in results()} == {
        (first["ok"], first["detail"], str(first["result"]))
    }
    pulses = published(watcher, DEVICE, "events", type="gate_test")
    assert [p["outcome"] for p in pulses] == ["pulsed"]  # the relay pulsed once
    assert terminal.poll() is None
    with TestClient(make_app(console), base_url="https://testserver") as http:
        assert login(http, "olga").status_code == 200
        page = http.get(f"/devices/{DEVICE}").text
    assert "sent 2 times" in page and first["detail"] in page


def test_a_terminal_that_restarts_before_its_result_goes_answers_after_and_restarts_once(
    rig: tuple[ConsoleRig, Partition], watcher: Watcher
) -> None:
    rig_, _ = rig
    console, broker = rig_.console, rig_.broker
    own = Partition(broker.host, broker.port)  # the terminal's own way to the broker
    try:
        config = rig_.terminal_config(REBOOTED, mqtt={"url": f"mqtt://127.0.0.1:{own.port}"})
        first = rig_.start_terminal("run", config)
        boot = wait_running(watcher, REBOOTED, set())
        assert wait_until(lambda: console.fleet.state_of(REBOOTED) == "online", WAIT_S)

        first.send_signal(signal.SIGSTOP)
        try:
            request = console.send_command("olga", REBOOTED, "reboot", "test")
            assert console.commands.get(request)["status"] == "delivered"  # type: ignore[index]
            # in the frozen terminal's socket, then its link is cut
            assert wait_until(lambda: own.passed_down(request.encode()), WAIT_S)
            own.cut()
        finally:
            first.send_signal(signal.SIGCONT)
        # It runs the reboot: the answer cannot go, and the process exits for a restart.
        assert first.wait(WAIT_S) == RESTART_EXIT_CODE
        assert published(watcher, REBOOTED, "cmd/reboot/result") == []
        assert console.commands.get(request)["status"] == "delivered"  # type: ignore[index]

        own.heal()
        second = rig_.start_terminal("run", config)  # systemd's part
        again = wait_running(watcher, REBOOTED, {boot})
        assert wait_until(
            lambda: console.commands.get(request)["status"] == "done",  # type: ignore[index]
            WAIT_S,
        ), console.commands.get(request)
        done = console.commands.get(request)
        assert done is not None and "simulated" in done["detail"], done
        answers = published(watcher, REBOOTED, "cmd/reboot/result", request_id=request)
        assert answers and all(a["result"] == {"action": "restart"} for a in answers)
        # It does not restart again: reports keep coming from the same boot.
        seen = len(published(watcher, REBOOTED, "telemetry", boot_id=again))
        assert wait_until(
            lambda: len(published(watcher, REBOOTED, "telemetry", boot_id=again)) >= seen + 5,
            WAIT_S,
        )
        assert second.poll() is None
    finally:
        own.close()
