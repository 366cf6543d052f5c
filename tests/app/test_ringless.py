"""A terminal without a challenge light says what it cannot stop: with the default config
it asks for the PIN on every face payment, and the self-test and telemetry say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.cli import main
from device.config import load_config, replay_defence
from device.core import events as ev
from device.core.match import MatchDecision
from device.core.policy import Payer
from device.core.reasons import Reason
from device.net.telemetry import AppMetrics
from device.shell.terminal import session_from_config


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"[device]\ndata_dir = '{tmp_path / 'data'}'\n"
        f"[hardware.pins]\nchallenge_light = false\n{extra}",
        encoding="utf-8",
    )
    return path


def test_a_ringless_terminal_with_the_default_config_asks_for_the_pin(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path), env={})
    session = session_from_config(
        config, new_tx_id=lambda: "tx-1", encrypt_pin=lambda pin, token: b"\0" * 16
    )
    now, out = 10.0, []
    for _ in range(config.session.face_frames):
        out += session.handle(ev.FaceSeen(now, 1, True))
        now += 0.07
    assert not any(isinstance(e, ev.StartChallenge) for e in out)  # nothing to play it on
    session.handle(ev.BlinkDetected(now, 1))
    decision = MatchDecision("match", "alice", 0.99, 0.5, ("alice",), "test")
    session.handle(ev.MatchResult(now, 1, decision, {"alice": Payer("alice")}))
    assert session.state == "pin"  # a clear match of a fare under pin_over: still the PIN
    assert session.pinless is False


def test_selftest_and_telemetry_say_what_a_ringless_terminal_cannot_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(_config(tmp_path), env={})
    defence = replay_defence(config)
    assert defence["challenge_light"] is False and defence["pinless_face_payment"] is False
    assert "asks for the PIN" in defence["detail"]
    metrics = AppMetrics()
    metrics.set_liveness(defence)
    assert metrics.snapshot()["liveness"] == defence  # the telemetry topic's field

    capsys.readouterr()
    main(["selftest", "--config", str(_config(tmp_path)), "--sim", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert "replay of a blinking customer is not stopped" in checks["liveness.replay"]["detail"]
    assert "asks for the PIN" in checks["liveness.replay"]["detail"]

    chosen = load_config(_config(tmp_path, "[session]\npinless_without_ring = true\n"), env={})
    assert replay_defence(chosen)["pinless_face_payment"] is True
    assert "PIN-less face payment chosen" in replay_defence(chosen)["detail"]
    fitted = load_config(None, env={})  # the defaults: a challenge light on BCM 26
    assert replay_defence(fitted)["pinless_face_payment"] is True
    assert Reason.PIN_NO_RING.value == "pin_no_ring"
