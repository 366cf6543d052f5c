"""Payment integrity against real processes: the terminal (`blinkpay run --sim`), the host
(`blinkpay-host serve`) and mosquitto, each scenario of bad luck and attack once, then the
books: no money lost or taken twice, no gate opening without a committed approved row, no
crash, no silent ledger loss. `blinkpay bench chaos` runs the same episodes by the hundred
(docs/reliability.md)."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device.chaos.scenarios import Books, Chaos, mount_tmpfs, unmount
from device.chaos.world import DEVICE_ID, ChaosWorld
from device.net.local_broker import mosquitto_binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.mqtt,
    pytest.mark.skipif(mosquitto_binary() is None, reason="needs mosquitto"),
]
LEDGER_FAULT_EXIT = 3


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    workdir = tmp_path_factory.mktemp("chaos")
    data_dir = workdir / "device-fs"
    mounted = mount_tmpfs(data_dir, 64)
    world = ChaosWorld(workdir, data_dir=data_dir if mounted else None, hold_expiry_s=6.0)
    bench = Chaos(world, seed=7)
    try:
        bench.start()
        yield bench
    finally:
        bench.close()
        world.close()
        if mounted:
            unmount(data_dir)


def _books_hold(chaos: Chaos) -> Books:
    chaos.settle()
    books = chaos.books()
    assert books.money_lost == 0, books
    assert books.gate_openings_without_row == 0, books
    assert books.terminal_crashes == 0 and books.unsynced_rows == 0, books
    assert books.holds_left == 0, books
    return books


def test_customers_pay_and_the_books_agree(chaos: Chaos) -> None:
    episode = chaos.payments(15.0)
    assert episode.payments >= 1 and episode.gate_openings == episode.payments
    books = _books_hold(chaos)
    assert books.charged_by_host == books.charged_expected > 0


def test_a_terminal_killed_while_the_host_answers_is_never_charged(chaos: Chaos) -> None:
    """Host paused, session waiting for it, terminal SIGKILLed, host wakes and approves:
    the restarted terminal declines the row as interrupted and the host releases the hold."""
    before = {row["id"] for row in chaos.world.ledger_rows()}
    episode = chaos.kills_in_authorization(1)
    assert not episode.notes, episode.notes  # the kill came inside the authorization window
    _books_hold(chaos)
    killed = [
        row
        for row in chaos.world.ledger_rows()
        if row["id"] not in before and "interrupted" in row["reasons"]
    ]
    assert len(killed) == 1 and killed[0]["status"] == "declined"
    assert chaos.world.host_settlement(killed[0]["id"]) in (None, (0, 0))


def _offline_approvals(chaos: Chaos) -> int:
    return sum(
        row["status"] == "approved" and row["body"].get("authorization") == "offline"
        for row in chaos.world.ledger_rows()
    )


def test_a_host_slower_than_the_timeout_moves_no_money_on_its_own(chaos: Chaos) -> None:
    """The terminal decides offline; the host's late answer must not charge again."""
    before = _offline_approvals(chaos)
    for _ in range(4):  # until a customer came while the host was paused
        chaos.slow_hosts(1)
        if _offline_approvals(chaos) > before:
            break
    assert _offline_approvals(chaos) > before, "no payment was decided offline"
    books = _books_hold(chaos)
    assert books.charged_by_host == books.charged_expected


def test_random_kills_and_broker_outages_lose_nothing(chaos: Chaos) -> None:
    chaos.kills(3)
    chaos.broker_outages(2)
    _books_hold(chaos)


@pytest.mark.skipif(os.geteuid() != 0, reason="a small filesystem of its own needs root")
def test_a_full_disk_opens_no_gate_and_takes_the_terminal_out_of_service(
    chaos: Chaos,
) -> None:
    episode = chaos.disk_full(1)
    if episode.skipped:
        pytest.skip(episode.skipped)
    assert "out_of_service seen in telemetry" in episode.notes
    _books_hold(chaos)
    assert chaos.telemetry.get("service", {}).get("state") == "in_service"


def test_hostile_messages_are_refused_and_counted_never_a_crash(chaos: Chaos) -> None:
    episode = chaos.fuzz(1000)
    assert episode.refusals >= 500 and "the terminal restarted" not in episode.notes
    assert chaos.world.terminal.alive
    _books_hold(chaos)


def test_a_hostile_network_moves_no_money(chaos: Chaos) -> None:
    """Forged rows, a rogue registered terminal's rows and voids, foreign keys and PIN
    floods while the customer pays: none of it is charged, refunded or answered."""
    episode = chaos.hostile(5)
    assert episode.refusals > 0
    assert "answers on chosen topics: 0" in episode.notes
    assert chaos.world.terminal.alive
    _books_hold(chaos)


# -- ledger loss (these break the terminal's database: they run last) ---------------------------


def _retained_status(port: int) -> dict[str, object]:
    seen: dict[str, object] = {}
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="status-reader")

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        seen.update(json.loads(message.payload))
        done.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(f"blinkpay/v1/dev/{DEVICE_ID}/status", qos=1)
    client.loop_start()
    done.wait(5.0)
    client.loop_stop()
    client.disconnect()
    return seen


def _start_refused(world: ChaosWorld) -> int | None:
    world.terminal.start()
    assert world.terminal.popen is not None
    return world.terminal.popen.wait(60)


def test_a_damaged_journal_that_lost_committed_rows_stops_the_terminal(chaos: Chaos) -> None:
    world = chaos.world
    paid = len(world.ledger_rows())
    assert world.wait_for(lambda: len(world.ledger_rows()) > paid, 30.0)
    world.terminal.kill()  # its journal (WAL) holds what it wrote since the last checkpoint
    wal = world.database_files()[1]
    data = bytearray(wal.read_bytes())
    assert len(data) > 32 + 24 + 64, "nothing in the journal to damage"
    data[32 + 24 + 40] ^= 0x01  # one bit of the first frame: every later frame is dropped too
    wal.write_bytes(bytes(data))
    assert _start_refused(world) == LEDGER_FAULT_EXIT
    lines = world.terminal.log_lines()
    assert any(line.get("event") == "fault" and line.get("reason") == "ledger" for line in lines)
    status = _retained_status(world.broker.port)
    assert status.get("state") == "fault" and status.get("reason") == "ledger", status


def test_a_deleted_database_stops_the_terminal(chaos: Chaos) -> None:
    world = chaos.world
    world.terminal.signal(signal.SIGKILL)
    for path in world.database_files():
        Path(path).unlink(missing_ok=True)
    assert _start_refused(world) == LEDGER_FAULT_EXIT
    assert "is gone" in str(_retained_status(world.broker.port).get("detail"))
