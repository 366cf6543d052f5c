"""A private mosquitto (the demo, the chaos world, the host's load bench): a free loopback port,
a temp directory, stopped after."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from device.errors import BlinkpayError

START_TIMEOUT_S = 10.0


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """mosquitto on 127.0.0.1 only, persistent so QoS 1 messages queued for a disconnected
    client survive a restart (the outage scene). Anonymous by default (the chaos bench,
    whose subject is crashes and outages, not who may connect); the demo runs it on the
    site configuration `blinkpay-host broker-config` writes instead (`configure`)."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.workdir, self.binary = workdir, binary
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "mosquitto.conf"
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "autosave_interval 1\n"
            "set_tcp_nodelay true\n"
            f"log_dest file {workdir}/mosquitto.log\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def configure(self, config_path: Path) -> LocalBroker:
        """Run on this mosquitto.conf (it must listen on 127.0.0.1:self.port)."""
        self.config_path = config_path
        return self

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (the load bench reads its CPU time)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalBroker:
        process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._process = process
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise BlinkpayError(f"mosquitto exited at start: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BlinkpayError(f"mosquitto did not listen on port {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
