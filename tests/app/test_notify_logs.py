"""sd_notify's datagrams and the JSON log lines journald stores."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import uuid

from device.logs import log_event, setup_logging
from device.notify import Notifier


def test_notifier_is_a_no_op_outside_systemd() -> None:
    notifier = Notifier(env={})
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False
    assert notifier.watchdog_interval_s is None


def test_notifier_sends_to_an_abstract_socket() -> None:
    name = f"blinkpay-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        notifier = Notifier(env={"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "4000000"})
        assert notifier.ready("up")
        assert server.recv(1024).decode().splitlines() == [
            "READY=1",
            f"MAINPID={os.getpid()}",
            "STATUS=up",
        ]
        assert notifier.watchdog()
        assert server.recv(1024) == b"WATCHDOG=1"
        notifier.close()
    assert notifier.watchdog_interval_s == 2.0  # half of WATCHDOG_USEC


def test_watchdog_meant_for_another_process_or_malformed_is_off() -> None:
    other = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier(env=other).watchdog_interval_s is None
    assert Notifier(env={"WATCHDOG_USEC": "soon"}).watchdog_interval_s is None
    assert Notifier(env={"NOTIFY_SOCKET": "relative/path"}).enabled is False


def test_a_vanished_socket_never_raises(tmp_path) -> None:
    notifier = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.enabled
    assert notifier.watchdog() is False


def test_json_logs_put_extra_fields_at_top_level() -> None:
    stream = io.StringIO()
    handler = setup_logging("INFO", "json", stream)
    try:
        log = logging.getLogger("blinkpay.test")
        log_event(log, "decision", "approved", tx_id="t-1", amount=250, reasons=["approved_online"])
        log.info("object %s", object(), extra={"event": "odd", "value": object()})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed", extra={"event": "error"})
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "decision" and lines[0]["amount"] == 250
    assert lines[0]["reasons"] == ["approved_online"] and lines[0]["level"] == "INFO"
    assert lines[1]["event"] == "odd" and isinstance(lines[1]["value"], str)
    assert "ValueError: boom" in lines[2]["exc"]
