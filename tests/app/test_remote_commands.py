"""The running terminal's remote side without a broker: a gate pulse only at idle and
never a payment, config/set refusals (identity, trust anchors, paths, env-masked keys,
invalid values) and the ledger pruned at the operator's retention."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import uuid6

from device.app import prune_ledger
from device.clock import FakeClock
from device.config import Config, load_config, read_overlay
from device.hw.config import HardwareConfig
from device.hw.devices import open_hardware
from device.remote.commands import TerminalCommands
from device.remote.config_set import RemoteConfig, refusals
from device.store.keys import provision_keys
from device.store.terminal_store import open_store, store_key_paths


class FakeLoop:
    """TerminalLoop's surface: jobs run at once, idle as the test says."""

    def __init__(self, idle: bool) -> None:
        self._idle = idle
        self.restarts: list[str] = []
        self.terminal = type("T", (), {"session": type("S", (), {"state": "authorize"})()})()

    def call(self, run: Any, timeout_s: float = 5.0) -> Any:
        return run(0.0)

    def idle(self) -> bool:
        return self._idle

    def restart_when_idle(self, reason: str, also: Any = None) -> None:
        self.restarts.append(reason)


class FakeNet:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None]] = []

    def publish_event(self, event_type: str, *, outcome: str | None = None, **_: Any) -> bool:
        self.events.append((event_type, outcome))
        return True


@pytest.mark.parametrize("idle", [True, False])
def test_gate_test_pulses_only_at_idle_and_is_an_event_not_a_payment(
    idle: bool, tmp_path: Path
) -> None:
    hardware = open_hardware(HardwareConfig(backend="sim"), FakeClock(), sim=True)
    config = Config()
    provision_keys(store_key_paths(config.store, tmp_path))
    store = open_store(config.store, tmp_path)
    net = FakeNet()
    commands = TerminalCommands(
        config,
        sim=True,
        hardware=hardware,
        store=store,
        net=net,  # type: ignore[arg-type]
        loop=FakeLoop(idle),  # type: ignore[arg-type]
        camera=lambda: None,
    )
    try:
        with hardware:
            outcome = commands.gate_test({})
            energised = hardware.relay.energised
        audited = store.database.db.execute(
            "SELECT count(*) FROM audit WHERE event = 'gate_test'"
        ).fetchone()[0]
        assert store.ledger.depth() == 0  # never a payment
    finally:
        store.close()
    assert outcome.ok is idle
    assert energised is idle
    assert audited == (1 if idle else 0)
    assert net.events == [("gate_test", "pulsed" if idle else "refused")]
    if not idle:
        assert "session is in progress" in outcome.detail


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        ({"device": {"id": "x"}}, "device.id cannot change remotely"),
        ({"mqtt": {"backend_public_key_file": "/tmp/k.pub"}}, "cannot change remotely"),
        ({"mqtt": {"url": "mqtt://evil:1883"}}, "mqtt.url cannot change remotely"),
        ({"store": {"outbox_max_rows": 5000}}, "store.outbox_max_rows cannot change"),
        ({"hardware": {"camera": {"path": "/dev/null"}}}, "hardware.camera.path cannot"),
        ({"payment": 300}, "sections of keys"),
    ],
)
def test_remote_config_never_touches_identity_trust_or_paths(
    partial: dict[str, Any], expected: str
) -> None:
    assert any(expected in problem for problem in refusals(partial, {}))


def test_a_key_the_environment_overrides_is_refused() -> None:
    problems = refusals({"payment": {"fare": 300}}, {"payment": {"fare": 250}})
    assert problems == ["payment.fare is set by the environment, which would override it"]


def test_config_set_validates_persists_and_picks_live_or_restart(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[device]\ndata_dir = "{tmp_path / "data"}"\n')
    config = load_config(config_path, env={})
    loop = FakeLoop(idle=True)
    loop.terminal.config = config  # type: ignore[attr-defined]
    apply = RemoteConfig(config_path, config, loop)  # type: ignore[arg-type]

    bad = apply({"payment": {"fare": "300"}}, 1)
    assert not bad.applied and "must be a whole number" in bad.reason
    assert read_overlay(config.device.data_dir) == {}

    live = apply({"match": {"threshold": 0.97}}, 2)
    assert live.applied and live.after is None and live.reason == "applied live"
    assert loop.terminal.config.match.threshold == 0.97  # type: ignore[attr-defined]

    later = apply({"payment": {"fare": 300}}, 3)
    assert later.applied and later.after is not None
    later.after()
    assert loop.restarts == ["config version 3"]
    assert read_overlay(config.device.data_dir) == {
        "match": {"threshold": 0.97},
        "payment": {"fare": 300},
    }
    assert load_config(config_path, env={}).payment.fare == 300


def test_acknowledged_rows_past_the_retention_are_pruned(tmp_path: Path) -> None:
    config = Config()
    provision_keys(store_key_paths(config.store, tmp_path))
    store = open_store(config.store, tmp_path)
    try:
        ledger = store.ledger
        rows = [ledger.write_pending(tx("2026-01-01T00:00:00Z")) for _ in range(2)]
        for tx_id in rows:
            ledger.set_status(tx_id, "approved")
        ledger.mark_acked(rows[0])
        now = dt.datetime(2026, 4, 11, tzinfo=dt.UTC).timestamp()  # 100 days later
        assert prune_ledger(store, 120, now=now) == 0  # within the retention
        assert prune_ledger(store, 90, now=now) == 1  # the unacknowledged row stays
        assert ledger.get(rows[0]) is None and ledger.get(rows[1]) is not None
    finally:
        store.close()


def tx(created_at: str) -> dict[str, object]:
    return {
        "id": str(uuid6.uuid7()),
        "created_at": created_at,
        "amount": 250,
        "currency": "EUR",
        "token": "user-000",
        "mode": "turnstile",
        "reasons": [],
    }
