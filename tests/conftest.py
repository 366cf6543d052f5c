"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from device.paths import SHARED_DATA_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip with the reason when this machine has no copy."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"third-party test data not present at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def lfw_dir(shared_data: Path) -> Path:
    path = shared_data / "faces" / "lfw-view1"
    if not (path / "pairsDevTest.txt").exists():
        pytest.skip(f"LFW view 1 not present at {path}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    config_path: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=10)

    def reload(self) -> None:
        """SIGHUP: mosquitto reads its password and ACL files again (a new terminal)."""
        self.process.send_signal(signal.SIGHUP)

    def start(self) -> None:
        """(Re)start on the same port, e.g. after stop() in an outage test."""
        self.process = _spawn_mosquitto(self.config_path)
        _wait_for_port(self.host, self.port, self.process)


def _spawn_mosquitto(config_path: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return subprocess.Popen(
        [binary, "-c", str(config_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"mosquitto exited: {err}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {host}:{port}")


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


def start_mosquitto(config_path: Path, port: int) -> Broker:
    """mosquitto from a config file that listens on 127.0.0.1:`port` (e.g. the one
    `blinkpay-host broker-config` wrote)."""
    process = _spawn_mosquitto(config_path)
    _wait_for_port("127.0.0.1", port, process)
    return Broker("127.0.0.1", port, process, config_path)


def start_site_broker(host_toml: Path, config_dir: Path, port: int) -> Broker:
    """The site's broker as `blinkpay-host broker-config` writes it from host.toml (its
    [mqtt] url must name 127.0.0.1:`port`): passwords and ACLs, no anonymous client.
    `config_dir` must be readable by mosquitto's own user (not under pytest's 0700 tmp)."""
    import contextlib
    import io

    from backend.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["broker-config", "--config", str(host_toml), str(config_dir)])
    assert code == 0, out.getvalue()
    assert json.loads(out.getvalue())["listener"] == f"127.0.0.1:{port}"
    return start_mosquitto(config_dir / "mosquitto.conf", port)


def start_broker(workdir: Path, extra_conf: str = "") -> Broker:
    """A real mosquitto on a free loopback port; persistence on so QoS 1 survives restarts.
    Anonymous: for tests about something other than who may reach the broker (sync,
    outages, payments); tests/security/ tests the site's broker as broker-config writes it."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "mosquitto.conf"
    config_path.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {workdir}/\n"
        "autosave_interval 1\n"
        f"{extra_conf}"
    )
    process = _spawn_mosquitto(config_path)
    _wait_for_port("127.0.0.1", port, process)
    return Broker("127.0.0.1", port, process, config_path)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    running = start_broker(tmp_path / "broker")
    try:
        yield running
    finally:
        running.stop()


# -- the host's store: SQLite and a real PostgreSQL (backend/store) ----------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A PostgreSQL server in a temp dir for the session (skipped, with the reason, only
    where the server binaries or psycopg are missing)."""
    from backend.store.pg_server import TempPostgres, pg_bin_dir

    if pg_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries not found (apt install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg missing: pip install blinkpay[postgresql]")
    with TempPostgres(durable=False) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def host_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What HostDb opens: a SQLite file, or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "host.db")
    server = request.getfixturevalue("postgres_server")
    return server.create_schema(f"t_{uuid.uuid4().hex[:16]}")


def two_people_photo(path: Path) -> Path:
    """A photo of two people side by side (the demo's portraits cropped to their faces, as
    big as the short-range detector finds them), written to `path`; skips without them."""
    import cv2

    from device.demo.portraits import portrait_path
    from device.errors import BlinkpayError

    try:
        collins, hopper = (cv2.imread(str(portrait_path(k))) for k in ("collins", "hopper"))
    except BlinkpayError as exc:
        pytest.skip(str(exc))
    left = cv2.resize(collins[34:224, 130:320], (320, 320))
    right = cv2.resize(hopper[52:440, 76:464], (320, 320))
    cv2.imwrite(str(path), np.hstack([left, right]))
    return path
