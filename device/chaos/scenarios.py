"""The chaos bench's episodes and its books: what bad luck and an attacker do to a running
terminal, and whether any money was lost, taken twice, or any gate opened without a row.

Each episode acts on the real processes of a ChaosWorld (SIGKILL the terminal at a random
moment or while it waits for the host, take the broker away, pause the host past the
authorization timeout, fill the terminal's disk, flood its topics with garbage), then lets
the world settle. The audit at the end compares three records that must agree:
- the terminal's ledger (what happened at the gate, signed by the terminal);
- the host's balance and holds (what the customer was charged);
- the terminal's log of gate openings (every one must name a committed approved row).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device.chaos.hostile import HostileNetwork
from device.chaos.world import (
    AUTH_TIMEOUT_S,
    DEVICE_ID,
    SHARD_ID,
    START_BALANCE,
    TOKEN,
    ChaosWorld,
)

RESTART_WAIT_S = 30.0  # a restarted terminal loads its models and reconnects within this
SETTLE_MARGIN_S = 60.0  # past the hold expiry: every row synced, every unused hold expired
PREFIX = "blinkpay/v1"


@dataclass
class Episode:
    name: str
    runs: int = 0
    payments: int = 0  # approved rows written during its runs
    gate_openings: int = 0
    refusals: int = 0  # hostile messages the terminal refused and counted (telemetry)
    skipped: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Books:
    rows: int
    approved: int
    charged_expected: int
    charged_by_host: int
    holds_left: int
    money_lost: int  # anything the host charged beyond the rows or short of them
    unsynced_rows: int
    gate_openings: int
    gate_openings_without_row: int
    terminal_crashes: int  # exits nobody asked for
    refusals: dict[str, int]


class Chaos:
    def __init__(self, world: ChaosWorld, seed: int = 1) -> None:
        self.world = world
        self.rng = random.Random(seed)
        self.episodes: list[Episode] = []
        self.crashes = 0
        self.telemetry: dict[str, Any] = {}
        self._watcher = self._watch_telemetry()

    # -- helpers ------------------------------------------------------------------------------
    def _watch_telemetry(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chaos-watcher")

        def on_message(_client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
            with contextlib.suppress(ValueError):
                self.telemetry = json.loads(message.payload)

        def on_connect(_c: Any, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
            client.subscribe(f"{PREFIX}/dev/{DEVICE_ID}/telemetry", qos=0)

        client.on_message = on_message
        client.on_connect = on_connect
        client.reconnect_delay_set(0.2, 1.0)
        client.connect_async("127.0.0.1", self.world.broker.port)
        client.loop_start()
        return client

    def _approved(self) -> int:
        return sum(row["status"] in ("approved", "voided") for row in self.world.ledger_rows())

    def _pulses(self) -> int:
        return len(self.world.terminal_events("relay_pulse"))

    def _running(self) -> bool:
        return any(line.get("event") == "started" for line in self._log_since(self._start_mark))

    def _log_since(self, mark: int) -> list[dict[str, Any]]:
        return self.world.terminal.log_lines()[mark:]

    def restart_terminal(self) -> None:
        terminal = self.world.terminal
        if terminal.popen is not None and terminal.popen.poll() not in (None, -signal.SIGKILL):
            self.crashes += 1  # it died on its own: a crash
        self._start_mark = len(terminal.log_lines())
        terminal.start()
        if not self.world.wait_for(self._running, RESTART_WAIT_S):
            raise RuntimeError(f"the terminal did not start again (see {terminal.log_path})")

    def start(self) -> None:
        self._start_mark = 0
        self.world.start()
        if not self.world.wait_for(self._running, RESTART_WAIT_S):
            raise RuntimeError(f"the terminal did not start (see {self.world.terminal.log_path})")

    def _run(self, name: str, runs: int, act: Callable[[Episode], None]) -> Episode:
        episode = Episode(name)
        before_rows, before_pulses = self._approved(), self._pulses()
        for _ in range(runs):
            act(episode)
            episode.runs += 1
        episode.payments = self._approved() - before_rows
        episode.gate_openings = self._pulses() - before_pulses
        self.episodes.append(episode)
        return episode

    # -- episodes -----------------------------------------------------------------------------
    def payments(self, seconds: float) -> Episode:
        """Nothing goes wrong: the baseline rate of paid rides."""
        return self._run("undisturbed", 1, lambda _e: time.sleep(seconds))

    def kills(self, count: int) -> Episode:
        def once(_episode: Episode) -> None:
            time.sleep(self.rng.uniform(0.5, 6.0))
            self.world.terminal.kill()
            self.restart_terminal()

        return self._run("sigkill_random", count, once)

    def kills_in_authorization(self, count: int) -> Episode:
        """The host is paused; the terminal is killed while its session waits for the
        answer; the host then wakes and answers a terminal that is gone."""

        def once(episode: Episode) -> None:
            mark = len(self.world.terminal.log_lines())
            self.world.host.signal(signal.SIGSTOP)
            try:
                waiting = self.world.wait_for(
                    lambda: any(
                        line.get("event") == "state" and line.get("state") == "authorize"
                        for line in self._log_since(mark)
                    ),
                    20.0,
                    step=0.05,
                )
                self.world.terminal.kill()
            finally:
                self.world.host.signal(signal.SIGCONT)
            if not waiting:
                episode.notes.append("no authorization seen before the kill")
            self.restart_terminal()

        return self._run("sigkill_in_authorization", count, once)

    def broker_outages(self, count: int) -> Episode:
        def once(_episode: Episode) -> None:
            time.sleep(self.rng.uniform(1.0, 4.0))
            self.world.broker.stop()
            time.sleep(self.rng.uniform(2.0, 8.0))
            self.world.broker.start()

        return self._run("broker_outage", count, once)

    def slow_hosts(self, count: int) -> Episode:
        """The host answers later than the terminal waits: the offline rules decide, the
        late answer must move no money."""

        def once(_episode: Episode) -> None:
            time.sleep(self.rng.uniform(0.5, 3.0))
            self.world.host.signal(signal.SIGSTOP)
            time.sleep(AUTH_TIMEOUT_S + self.rng.uniform(2.0, 6.0))
            self.world.host.signal(signal.SIGCONT)

        return self._run("slow_host", count, once)

    def disk_full(self, count: int) -> Episode:
        """The terminal's data directory fills up while customers keep coming: no gate may
        open without a committed row; the terminal goes out of service, then comes back."""
        data_dir = Path(self.world.terminal_config.device.data_dir)
        if not os.path.ismount(data_dir):
            episode = Episode("disk_full", skipped="data directory is not its own filesystem")
            self.episodes.append(episode)
            return episode

        def once(episode: Episode) -> None:
            filler = data_dir / "filler"
            free = shutil.disk_usage(data_dir).free
            with filler.open("wb") as out, contextlib.suppress(OSError):
                out.write(b"\0" * free)  # until it is full: that is the point
            time.sleep(self.rng.uniform(10.0, 15.0))
            if self.telemetry.get("service", {}).get("state") == "out_of_service":
                episode.notes.append("out_of_service seen in telemetry")
            filler.unlink()
            self.world.wait_for(
                lambda: self.telemetry.get("service", {}).get("state") != "out_of_service", 30.0
            )

        return self._run("disk_full", count, once)

    def fuzz(self, count: int) -> Episode:
        """Garbage, near-valid and hostile messages on every topic the terminal listens to."""

        def once(episode: Episode) -> None:
            before = sum(self.telemetry.get("rejected", {}).values())
            boot = self.telemetry.get("boot_id")
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chaos-fuzzer")
            client.connect("127.0.0.1", self.world.broker.port)
            client.loop_start()
            try:
                for _ in range(count):
                    topic, payload = fuzz_message(self.rng)
                    client.publish(topic, payload, qos=0)
                    if _ % 500 == 0:
                        time.sleep(0.05)  # let the broker's queue to the terminal drain
            finally:
                client.loop_stop()
                client.disconnect()
            episode.notes.append(f"{count} messages")
            # the terminal's counters, a telemetry report or two later (same boot: no crash)
            self.world.wait_for(lambda: self._refused_since(before) >= count, 60.0, step=1.0)
            episode.refusals = self._refused_since(before)
            restarted = boot is not None and self.telemetry.get("boot_id") != boot
            if not self.world.terminal.alive or restarted:
                episode.notes.append("the terminal restarted")

        return self._run("fuzz", 1, once)

    def hostile(self, rounds: int) -> Episode:
        """Forged rows, a rogue registered terminal, foreign keys and floods while customers
        pay (device/chaos/hostile.py); the host refuses all of it, the books stay exact."""

        def once(episode: Episode) -> None:
            attacker = HostileNetwork(
                self.world.broker.port, DEVICE_ID, TOKEN, self.world.rogue_key, self.rng.random()
            )
            try:
                for _ in range(rounds):
                    attacker.round()
                    time.sleep(1.0)  # the terminal keeps paying; the next round copies it
            finally:
                attacker.close()
            sent = attacker.result.sent
            episode.refusals = sum(sent.values())
            episode.notes.append(", ".join(f"{k} {v}" for k, v in sorted(sent.items())))
            stolen = attacker.result.answers_to_chosen_topics
            episode.notes.append(f"answers on chosen topics: {stolen}")

        return self._run("hostile_network", 1, once)

    def _refused_since(self, before: int) -> int:
        return sum(self.telemetry.get("rejected", {}).values()) - before

    # -- the books ----------------------------------------------------------------------------
    def settle(self) -> None:
        """Everything back up, every row acknowledged, every unused hold expired."""
        if not self.world.broker.running:
            self.world.broker.start()
        self.world.host.signal(signal.SIGCONT)
        if not self.world.terminal.alive:
            self.restart_terminal()
        self.world.wait_for(
            lambda: (
                all(row["acked"] for row in self.world.ledger_rows())
                and self.world.host_holds() == 0
            ),
            self.world.hold_expiry_s + SETTLE_MARGIN_S,
            step=1.0,
        )

    def books(self) -> Books:
        rows = self.world.ledger_rows()
        approved = {row["id"] for row in rows if row["status"] == "approved"}
        paid_then_voided = {row["id"] for row in rows if row["status"] == "voided"}
        expected = sum(row["amount"] for row in rows if row["status"] == "approved")
        charged = START_BALANCE - self.world.host_balance() - self.world.host_holds()
        pulses = [line.get("tx_id") for line in self.world.terminal_events("relay_pulse")]
        return Books(
            rows=len(rows),
            approved=len(approved),
            charged_expected=expected,
            charged_by_host=charged,
            holds_left=self.world.host_holds(),
            money_lost=abs(charged - expected),
            unsynced_rows=sum(not row["acked"] for row in rows),
            gate_openings=len(pulses),
            gate_openings_without_row=sum(
                1 for tx in pulses if tx not in approved | paid_then_voided
            ),
            terminal_crashes=self.crashes,
            refusals=dict(self.telemetry.get("rejected", {})),
        )

    def close(self) -> None:
        self._watcher.loop_stop()
        self._watcher.disconnect()


def fuzz_message(rng: random.Random) -> tuple[str, bytes]:
    """A topic the terminal subscribes to and a payload that is anything but valid."""
    device = f"{PREFIX}/dev/{DEVICE_ID}"
    topic = rng.choice(
        [
            f"{device}/auth/resp",
            f"{device}/tx/ack",
            f"{device}/cmd/resync",
            f"{device}/cmd/gate-test",
            f"{device}/config/set",
            f"{PREFIX}/shard/{SHARD_ID}/delta",
            f"{PREFIX}/shard/{SHARD_ID}/snapshot",
        ]
    )
    kind = rng.randrange(7)
    if kind == 0:
        payload = rng.randbytes(rng.randrange(0, 300))
    elif kind == 1:
        payload = b"{" * rng.randrange(1, 5000)  # deep nesting, unterminated
    elif kind == 2:
        payload = json.dumps({"v": 1, "tx_id": "9" * rng.randrange(1, 100_000)}).encode()
    elif kind == 3:
        payload = json.dumps(
            {"v": 1, "request_id": "x", "tx_id": "y", "decision": "approved", "reason": "ok"}
        ).encode()  # an unsigned approval
    elif kind == 4:
        payload = json.dumps({"v": 1, "issued_at": float("nan"), "body": [None] * 50}).encode()
    elif kind == 5:
        payload = b"x" * rng.randrange(200_000, 600_000)  # oversize
    else:
        payload = json.dumps({"v": rng.choice([0, 2, "1", None]), "sig": "AAAA"}).encode()
    return topic, payload


def mount_tmpfs(path: Path, megabytes: int) -> bool:
    """A small filesystem of its own for the terminal's data (root only): True if mounted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
    )
    return done.returncode == 0


def unmount(path: Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def table(episodes: list[Episode], books: Books) -> dict[str, Any]:
    return {
        "episodes": [asdict(e) for e in episodes],
        "books": asdict(books),
        "ok": books.money_lost == 0
        and books.gate_openings_without_row == 0
        and books.terminal_crashes == 0
        and books.unsynced_rows == 0,
    }
