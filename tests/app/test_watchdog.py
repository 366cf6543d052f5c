"""`blinkpay run --sim` as systemd sees it: READY=1, periodic WATCHDOG=1 from the main loop,
no pings while the loop hangs, and a clean exit on SIGTERM with the relay released."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.shell.loop import HANG_FILE_ENV

WATCHDOG_USEC = 300_000  # the loop pings every 0.15 s (half of it, as systemd advises)
STOP_LIMIT_S = 5.0  # systemd's TimeoutStopSec for the unit would be this


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, Path]]:
    """A unix datagram socket playing systemd's NOTIFY_SOCKET (short path: 108-byte limit)."""
    directory = Path(tempfile.mkdtemp(prefix="bpn-", dir="/tmp"))
    path = directory / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield sock, path
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


def _messages(sock: socket.socket, seconds: float) -> list[str]:
    """Every notification that arrives within `seconds` (real time)."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


def _wait_for(sock: socket.socket, field: str, seconds: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got += _messages(sock, 0.2)
        if any(field in m.splitlines() for m in got):
            return got
    raise AssertionError(f"{field} not received in {seconds} s; got {got}")


def _pings(messages: list[str]) -> int:
    return sum("WATCHDOG=1" in m.splitlines() for m in messages)


def test_ready_watchdog_hang_and_sigterm(
    sim_terminal, blinkpay_command: list[str], notify_socket, tmp_path: Path
) -> None:
    sock, path = notify_socket
    hang_file = tmp_path / "hang"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINKPAY_", "WATCHDOG_"))}
    env.update(
        NOTIFY_SOCKET=str(path), WATCHDOG_USEC=str(WATCHDOG_USEC), **{HANG_FILE_ENV: str(hang_file)}
    )
    process = subprocess.Popen(
        [*blinkpay_command, "run", "--sim", "--config", str(sim_terminal.config_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        ready = _wait_for(sock, "READY=1", 60.0)
        assert any(f"MAINPID={process.pid}" in m for m in ready)
        running = _messages(sock, 1.0)
        assert _pings(running) >= 3, running

        hang_file.touch()  # the loop body now blocks, as a handler stuck on I/O would
        _messages(sock, 0.5)  # pings already sent before the loop reached the hang
        hung = _messages(sock, 1.2)
        assert _pings(hung) == 0, hung  # systemd would now restart the service
        assert process.poll() is None

        hang_file.unlink()
        resumed = _messages(sock, 1.0)
        assert _pings(resumed) >= 3, resumed

        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=STOP_LIMIT_S)
        assert returncode == 0
        assert any("STOPPING=1" in m.splitlines() for m in _messages(sock, 0.3))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    log = [
        json.loads(line) for line in process.stderr.read().decode().splitlines() if line[:1] == "{"
    ]
    stopped = [entry for entry in log if entry.get("event") == "stopped"]
    assert stopped and stopped[-1]["relay_energised"] is False
