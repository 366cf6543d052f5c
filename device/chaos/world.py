"""The chaos bench's world: real processes on loopback, nothing simulated but the hardware.

A private mosquitto, the reference host as its own process (`blinkpay-host serve`), and the
terminal as its own process (`blinkpay run --sim`) whose camera plays a looping clip of an
enrolled demo customer (a public-domain portrait with a painted blink, written to the
work directory) who looks, blinks, waits for the gate and walks away, every few seconds.
The world can kill, pause, starve and flood any of them, and audits the money afterwards
from the terminal's ledger and the host's database.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.config import load_host_config
from backend.host import PaymentHost
from device.chaos.hostile import ROGUE_ID
from device.config import load_config
from device.crypto.signing import private_pem, public_pem, write_private_file
from device.demo.portraits import close_eyes, load_portrait
from device.errors import BlinkpayError
from device.net.local_broker import LocalBroker, mosquitto_binary
from device.provisioning import provision
from device.vision.config import VisionConfig
from device.vision.pipeline import FacePipeline
from device.vision.templates import template_from_images

DEVICE_ID = "chaos-gate-01"
SHARD_ID = "chaos"
TOKEN = "cust-chaos"
FARE = 250
START_BALANCE = 10**9
CLIP_FPS = 12
BLINK_CLOSURES = (0.5, 0.95, 1.0, 0.5)
AUTH_TIMEOUT_S = 3.0
HOLD_EXPIRY_S = 20.0  # the host gives an unused authorization back after this


@dataclass
class Process:
    """A child process whose stderr (JSON log lines) goes to a file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, **self.env},
            start_new_session=True,  # a SIGKILL of the bench's own group never reaches it
        )
        log.close()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.popen is None:
            return None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        if not self.log_path.exists():
            return lines
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"msg": raw, "event": "unparsed"})
        return lines


def _paint_clip(folder: Path) -> tuple[np.ndarray, Path]:
    """Look (1.2 s), blink, wait for the gate (2.5 s), walk away (1.5 s), at CLIP_FPS."""
    rgb = load_portrait("collins")
    pipeline = FacePipeline.from_config(VisionConfig(), with_embedder=False)
    faces = pipeline.process(rgb, 0.0, track=False, embed=False)
    if not faces:
        raise BlinkpayError("no face found in the demo portrait")
    blink = [close_eyes(rgb, faces[0].landmarks, c) for c in BLINK_CLOSURES]
    empty = np.full_like(rgb, 128)
    frames = [rgb] * int(1.2 * CLIP_FPS) + blink + [rgb] * int(2.5 * CLIP_FPS) + [empty] * 18
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (folder / "fps.txt").write_text(f"{CLIP_FPS}\n")
    return rgb, folder


class ChaosWorld:
    def __init__(
        self,
        workdir: Path,
        *,
        data_dir: Path | None = None,
        hold_expiry_s: float = HOLD_EXPIRY_S,
    ) -> None:
        self.hold_expiry_s = hold_expiry_s
        binary = mosquitto_binary()
        if binary is None:
            raise BlinkpayError("the chaos bench needs mosquitto (apt-get install mosquitto)")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.broker = LocalBroker(workdir / "broker", binary).start()
        self.data_dir = data_dir or workdir / "device"
        self.host_dir = workdir / "host"
        portrait, clip = _paint_clip(workdir / "clip")
        self.rogue_key = Ed25519PrivateKey.generate()  # the hostile episode's second terminal
        pin_key = self._host_keys()
        provisioned = provision(
            workdir / "terminal.toml", self._terminal_sections(clip), pin_key=pin_key
        )
        self.terminal_config = load_config(provisioned.config_path, env={})
        self.host_config_path = self._host_toml()
        self._enrol(portrait, provisioned.public_key_pem, provisioned.box_public_key_pem)
        python = sys.executable
        self.host = Process(
            "host",
            [python, "-m", "backend.cli", "serve", "--config", str(self.host_config_path)],
            workdir / "logs" / "host.log",
        )
        self.terminal = Process(
            "terminal",
            [python, "-m", "device.cli", "run", "--sim", "--config", str(provisioned.config_path)],
            workdir / "logs" / "terminal.log",
        )

    # -- setup --------------------------------------------------------------------------------
    def _host_keys(self) -> bytes:
        key = Ed25519PrivateKey.generate()
        write_private_file(self.host_dir / "signing.pem", private_pem(key))
        (self.host_dir / "signing.pub.pem").write_bytes(public_pem(key.public_key()))
        pin_key = secrets.token_bytes(32)
        write_private_file(self.host_dir / "pin.key", pin_key.hex().encode())
        return pin_key

    def _terminal_sections(self, clip: Path) -> dict[str, Any]:
        return {
            "device": {"id": DEVICE_ID, "data_dir": str(self.data_dir), "log_format": "json"},
            "hardware": {
                "backend": "sim",
                # nobody walks a simulated gate; no ring: a clip cannot answer the light
                "pins": {"passage": False, "challenge_light": False},
                "camera": {"source": "file", "path": str(clip), "file_loop": True},
            },
            "mqtt": {
                "url": self.broker.url,
                "shard_id": SHARD_ID,
                "backend_public_key_file": str(self.host_dir / "signing.pub.pem"),
                "auth_timeout_s": AUTH_TIMEOUT_S,
                "reconnect_min_s": 0.2,
                "reconnect_max_s": 1.0,
                "tx_retry_s": 1.0,
                "telemetry_interval_s": 2.0,
            },
            # no ring, and the clip is a recording: PIN-less face payment is this bench's
            # explicit choice (it audits the money, docs/liveness.md the replay defence)
            "session": {"pinless_without_ring": True},
            "payment": {
                "fare": FARE,
                "max_per_user_day": 10**8,
                "velocity_max": 10**6,
            },
        }

    def _host_toml(self) -> Path:
        path = self.workdir / "host.toml"
        path.write_text(
            f'host_id = "chaos-host"\n'
            f'db_path = "{self.host_dir / "host.db"}"\n'
            f'signing_key_file = "{self.host_dir / "signing.pem"}"\n'
            f'pin_key_file = "{self.host_dir / "pin.key"}"\n'
            f"hold_expiry_s = {self.hold_expiry_s}\n"
            "hold_check_s = 1.0\n"
            "[mqtt]\n"
            f'url = "{self.broker.url}"\n'
            f'shard_id = "{SHARD_ID}"\n'
            "reconnect_min_s = 0.2\n"
            "reconnect_max_s = 1.0\n"
        )
        return path

    def _enrol(self, portrait: np.ndarray, public_pem_text: str, box_pem_text: str) -> None:
        pipeline = FacePipeline.from_config(VisionConfig())
        template = template_from_images(pipeline, [portrait])
        host = PaymentHost(load_host_config(self.host_config_path), serve=False)
        try:
            host.register_device(
                DEVICE_ID, public_pem_text.encode(), box_pem_text.encode(), SHARD_ID
            )
            # A second terminal of the shard, gone rogue (the hostile-network episode).
            host.register_device(ROGUE_ID, self.rogue_key.public_key(), None, SHARD_ID)
            host.enrol(
                TOKEN,
                template.vector,
                shard_id=SHARD_ID,
                daily_limit=10**9,
                offline_allowance=10**8,
                balance=START_BALANCE,
                embedder_version=template.embedder_version,
                publish=False,
            )
        finally:
            host.db.close()

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        self.host.start()
        self.terminal.start()

    def close(self) -> None:
        self.terminal.stop()
        self.host.stop()
        self.broker.stop()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(step)
        return predicate()

    def terminal_events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.terminal.log_lines() if line.get("event") == event]

    def terminal_state(self) -> str | None:
        states = self.terminal_events("state")
        return None if not states else str(states[-1].get("state"))

    # -- reading the books --------------------------------------------------------------------
    def ledger_rows(self) -> list[dict[str, Any]]:
        path = Path(self.terminal_config.device.data_dir) / self.terminal_config.store.db_file
        if not path.exists():
            return []
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
            rows = conn.execute(
                "SELECT id, status, amount, acked_at, reasons, body FROM ledger ORDER BY seq"
            ).fetchall()
        return [
            {
                "id": r[0],
                "status": r[1],
                "amount": r[2],
                "acked": r[3] is not None,
                "reasons": json.loads(r[4]),
                "body": json.loads(r[5]),
            }
            for r in rows
        ]

    def host_balance(self) -> int:
        path = self.host_dir / "host.db"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
            row = conn.execute("SELECT balance FROM accounts WHERE token = ?", [TOKEN]).fetchone()
        return int(row[0])

    def host_settlement(self, tx_id: str) -> tuple[int, int] | None:
        """(held, charged) of one transaction at the host, None if it never heard of it."""
        path = self.host_dir / "host.db"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
            row = conn.execute(
                "SELECT held, charged FROM settlements WHERE tx_id = ?", [tx_id]
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def database_files(self) -> list[Path]:
        path = Path(self.terminal_config.device.data_dir) / self.terminal_config.store.db_file
        return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]

    def host_holds(self) -> int:
        path = self.host_dir / "host.db"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
            row = conn.execute("SELECT COALESCE(SUM(held), 0) FROM settlements").fetchone()
        return int(row[0])
