"""A running fleet moves from dlib's embedder to MobileFaceNet through real payments, with
no stored photo (docs/matching.md, "Changing the embedder"): mosquitto, `blinkpay-host
serve` and two `blinkpay run --sim` terminals as real processes, each watching a looped
clip of one customer who blinks and pays. The operator starts the migration; each
terminal sends the new embedder's template of every face it is paid by; once every
customer is covered the operator switches the shard; both terminals change embedder live
and the customers go on paying, now matched by MobileFaceNet templates only."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from device.config import Config, read_overlay
from device.provisioning import provision
from device.vision.models import load_manifest
from tests.conftest import Broker

# bounded by the waits below (model loading and payments on a busy 2-core machine)
pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
SHARD = "station-m"
CUSTOMERS = {"gate-m1": ("alice", "collins"), "gate-m2": ("bob", "hopper")}
WAIT_S = 240.0  # model loading and payments on a busy 2-core machine; never a timing assertion


def _embedders() -> dict[str, tuple[str, int]]:
    """`vision.embedder` name -> (embedder version, dim) of every shipped embedder."""
    found: dict[str, tuple[str, int]] = {}
    for role, entry in load_manifest(Config().vision.models_dir or None).entries.items():
        if role.startswith("embedder_"):
            version = str(entry.raw.get("embedder_version", entry.version))
            found[role.removeprefix("embedder_")] = (version, int(entry.raw["embedding_dim"]))
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINKPAY_", "NOTIFY_"))}
    return {**env, "PYTHONPATH": str(REPO)}


def _host(*argv: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", *argv],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _wait(predicate: Callable[[], bool], what: str, stderr: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{stderr()}")


def _blink_clip(folder: Path, portrait: str) -> None:
    """One customer who looks, blinks, stays a moment and leaves: a frame folder, looped."""
    from device.demo.portraits import close_eyes, load_portrait
    from device.vision.pipeline import FacePipeline

    rgb = load_portrait(portrait)
    pipeline = FacePipeline.from_config(Config().vision, with_embedder=False)
    faces = pipeline.process(rgb, 0.0, track=False, embed=False)
    assert faces, f"the pipeline finds no face in the {portrait} portrait"
    frames = [rgb] * 10
    frames += [close_eyes(rgb, faces[0].landmarks, c) for c in (0.5, 0.95, 1.0, 1.0, 0.5)]
    frames += [rgb] * 25 + [np.full_like(rgb, 128)] * 30
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"f{index:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (folder / "fps.txt").write_text("15\n")


class Fleet:
    def __init__(self, broker: Broker, root: Path, old: str) -> None:
        self.root, self.broker = root, broker
        self.host_dir = root / "host"
        self.keys = _host("keys", str(self.host_dir))
        self.host_toml = self.host_dir / "host.toml"
        version, dim = _embedders()[old]
        self.host_toml.write_text(
            f'host_id = "host-m"\nembedder_version = "{version}"\ndim = {dim}\n'
            f'[mqtt]\nurl = "{broker.url}"\nshard_id = "{SHARD}"\n'
        )
        self.processes: list[tuple[str, subprocess.Popen[str]]] = []
        self.configs: dict[str, Path] = {}

    def terminal(self, device_id: str, portrait: str, embedder: str) -> Path:
        folder = self.root / device_id
        clip = folder / "clip"
        _blink_clip(clip, portrait)
        sections = {
            "device": {"id": device_id, "data_dir": str(folder / "data"), "log_format": "json"},
            "hardware": {
                "backend": "sim",
                # a recorded clip cannot answer the challenge light: a terminal without a ring;
                # and nobody walks through: a gate without a PASS contact (no ride voided)
                "pins": {"challenge_light": False, "passage": False},
                "camera": {"source": "file", "path": str(clip), "file_loop": True},
            },
            # the passive cue is another test's subject; off, each frame costs less on a
            # busy machine (this terminal runs two embedders per face while migrating)
            "vision": {"embedder": embedder, "passive_enabled": False},
            "payment": {"velocity_max": 1000},
            # ring-less: the operator's choice of PIN-less rides (the default asks for a PIN)
            "session": {"pinless_without_ring": True},
            "mqtt": {
                "url": self.broker.url,
                "shard_id": SHARD,
                "backend_public_key_file": self.keys["public_key_file"],
                "telemetry_interval_s": 2.0,
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 1.0,
            },
        }
        pin_key = bytes.fromhex(Path(self.keys["pin_key_file"]).read_text().strip())
        made = provision(folder / "config.toml", sections, pin_key=pin_key)
        (folder / "device.pub").write_text(made.public_key_pem)
        (folder / "box.pub").write_text(made.box_public_key_pem)
        _host(
            "device", "add", device_id, str(folder / "device.pub"),
            "--x25519", str(folder / "box.pub"), "--shard", SHARD,
            "--config", str(self.host_toml),
        )  # fmt: skip
        self.configs[device_id] = folder / "config.toml"
        return folder / "config.toml"

    def start(self, name: str, *argv: str) -> None:
        log = (self.root / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", *argv], env=_env(), stdout=subprocess.DEVNULL, stderr=log,
            text=True,
        )  # fmt: skip
        self.processes.append((name, process))

    def logs(self) -> str:
        parts = []
        for name, process in self.processes:
            text = (self.root / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} (exit {process.poll()}):\n{text[-2500:]}")
        return "\n".join(parts)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines of one process."""
        found = []
        for line in (self.root / f"{name}.log").read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.host_dir / 'blinkpay-host.db'}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def approved(self, token: str, after: float = 0.0) -> int:
        rows = self.query(
            "SELECT COUNT(*) FROM transactions WHERE token = ? AND status = 'approved'"
            " AND result = 'recorded' AND received_at > ?",
            token,
            after,
        )
        return int(rows[0][0])

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def fleet(broker: Broker, tmp_path: Path) -> Iterator[Fleet]:
    pytest.importorskip("skimage", reason="the demo extra carries the customers' portraits")
    pytest.importorskip("matplotlib", reason="the demo extra carries the customers' portraits")
    shipped = _embedders()
    if not {"dlib", "mobilefacenet"} <= set(shipped):
        pytest.skip(f"needs the dlib and MobileFaceNet embedders (shipped: {sorted(shipped)})")
    running = Fleet(broker, tmp_path, "dlib")
    try:
        yield running
    finally:
        running.stop()


def test_a_fleet_moves_to_mobilefacenet_through_payments(fleet: Fleet) -> None:
    from device.demo.portraits import portrait_path

    new_version, new_dim = _embedders()["mobilefacenet"]
    old_version, _ = _embedders()["dlib"]
    host = str(fleet.host_toml)
    for device_id, (token, portrait) in CUSTOMERS.items():
        config = fleet.terminal(device_id, portrait, "dlib")
        _host("enrol", token, "--images", str(portrait_path(portrait)), "--balance", "1000000",
              "--daily-limit", "1000000", "--terminal-config", str(config), "--shard", SHARD,
              "--config", host)  # fmt: skip
    assert {row[0] for row in fleet.query("SELECT embedder_version FROM templates")} == {
        old_version
    }
    fleet.start("host", "backend.cli", "serve", "--config", host)
    started = _host("shard", "migrate", "--to", new_version, "--dim", str(new_dim),
                    "--shard", SHARD, "--config", host)  # fmt: skip
    assert started["migrating_to"] == new_version
    for device_id, config in fleet.configs.items():
        fleet.start(device_id, "device.cli", "run", "--sim", "--config", str(config))

    # 1. Each customer pays with the dlib template; the terminal sends the new template.
    def covered() -> bool:
        rows = fleet.query(
            "SELECT token FROM next_templates WHERE embedder_version = ? AND source = 'payment'",
            new_version,
        )
        return {row[0] for row in rows} == {"alice", "bob"}

    _wait(covered, "a MobileFaceNet template of both customers from their payments", fleet.logs)
    bound = fleet.query("SELECT token, device_id, tx_id FROM next_templates ORDER BY token")
    for token, device_id, tx_id in bound:  # each bound to an approved payment of its terminal
        tx = fleet.query("SELECT device_id, token FROM transactions WHERE tx_id = ?", tx_id)
        auth = fleet.query("SELECT device_id, token FROM authorizations WHERE tx_id = ?", tx_id)
        assert (tx or auth)[0] == (device_id, token)
        assert CUSTOMERS[device_id][0] == token
    status = _host("shard", "status", "--shard", SHARD, "--config", host)
    assert (status["customers"], status["covered"], status["coverage"]) == (2, 2, 1.0)

    # 2. The operator switches the shard: the old templates go, the new ones are the shard.
    switched = _host("shard", "switch", "--min-coverage", "1.0", "--shard", SHARD,
                     "--config", host)  # fmt: skip
    assert switched["embedder_version"] == new_version and switched["needs_enrolment"] == []
    switch_version = switched["snapshot_version"]
    templates = fleet.query("SELECT token, embedder_version, dim FROM templates ORDER BY token")
    assert templates == [("alice", new_version, new_dim), ("bob", new_version, new_dim)]
    audit = fleet.query("SELECT operator, action, target FROM audit WHERE action LIKE 'shard_%'")
    assert (None, "shard_switch", SHARD) in audit

    # 3. Both terminals change embedder live, keep it, and take the new shard.
    def on_new_shard() -> bool:
        rows = fleet.query(
            "SELECT device_id, shard_version FROM devices WHERE device_id IN (?, ?)",
            *CUSTOMERS,
        )
        return len(rows) == 2 and all((v or 0) >= switch_version for _, v in rows)

    _wait(on_new_shard, "both terminals to acknowledge the switched shard", fleet.logs)
    switched_at = time.time()
    for config in fleet.configs.values():
        overlay = read_overlay(config.parent / "data")
        assert overlay.get("vision", {}).get("embedder") == "mobilefacenet", overlay
    for _, process in fleet.processes:
        assert process.poll() is None, fleet.logs()  # live: nobody restarted

    # 4. The customers pay again, matched against MobileFaceNet templates only.
    _wait(
        lambda: all(fleet.approved(token, switched_at) > 0 for token, _ in CUSTOMERS.values()),
        "both customers to pay with the new embedder",
        fleet.logs,
    )
    for device_id in CUSTOMERS:  # each changed once, live, and matched with the new one
        events = fleet.events(device_id)
        assert [e["to"] for e in events if e.get("event") == "embedder_switched"] == [new_version]
        assert not [e for e in events if e.get("event") == "embedder_change_error"]
