"""MQTT 5 -> 3.1.1 fallback: in front of the real mosquitto, a proxy that answers MQTT 5
CONNECTs the way a 3.1.1-only broker does (CONNACK return code 1, "unacceptable protocol
version") and passes 3.1.1 connections through. The terminal must fall back and work."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.core.events import AuthCandidate
from tests.conftest import Broker
from tests.net.conftest import SHARD, BackendKeys, make_host, make_terminal, unit_vector
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt

REFUSE_V5 = bytes([0x20, 0x02, 0x00, 0x01])  # CONNACK, 3.1.1 return code 1


def protocol_level(connect: bytes) -> int:
    """The protocol level byte of a CONNECT packet (4: 3.1.1, 5: MQTT 5)."""
    index, shift = 1, 0
    while connect[index] & 0x80:  # remaining length, variable-length integer
        index += 1
        shift += 7
    index += 1
    name_length = int.from_bytes(connect[index : index + 2], "big")
    return connect[index + 2 + name_length]


class V311Proxy:
    def __init__(self, upstream: Broker) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refused_v5 = 0
        self.passed_v311 = 0
        self._open: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        first = conn.recv(65536)
        if not first:
            conn.close()
            return
        if protocol_level(first) == 5:
            self.refused_v5 += 1
            conn.sendall(REFUSE_V5)
            conn.close()
            return
        self.passed_v311 += 1
        up = socket.create_connection((self.upstream.host, self.upstream.port))
        self._open.append(up)
        up.sendall(first)
        threading.Thread(target=self._pump, args=(up, conn), daemon=True).start()
        self._pump(conn, up)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self._open:
            sock.close()


@pytest.fixture
def proxy(broker: Broker) -> Iterator[V311Proxy]:
    running = V311Proxy(broker)
    yield running
    running.close()


def test_auto_falls_back_to_311_and_still_pays(
    broker: Broker, proxy: V311Proxy, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()  # MQTT 5, direct
    url = f"mqtt://127.0.0.1:{proxy.port}"
    terminal = make_terminal(url, backend_keys, tmp_path / "dev")  # protocol = auto
    terminal.register(host)
    try:
        terminal.net.start()
        assert terminal.net.link.wait_connected(10)
        assert terminal.net.link.protocol == "3.1.1"
        assert proxy.refused_v5 == 1 and proxy.passed_v311 >= 1
        assert wait_until(lambda: terminal.net.shard_sync.version == 1)
        host.enrol("tok-f", unit_vector(8), shard_id=SHARD, balance=100)
        reply = terminal.net.authorize(
            tx_id="018f4e2c-0000-7000-8000-0000000000f1",
            amount=30,
            currency="EUR",
            candidates=[AuthCandidate("tok-f")],
        )
        assert reply is not None and reply.approved
        terminal.pay("tok-f", 30, tx_id="018f4e2c-0000-7000-8000-0000000000f1")
        assert wait_until(lambda: terminal.store.ledger.depth() == 0)
    finally:
        terminal.stop()
        host.stop()


def test_a_pinned_mqtt5_terminal_does_not_fall_back(
    proxy: V311Proxy, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    url = f"mqtt://127.0.0.1:{proxy.port}"
    terminal = make_terminal(url, backend_keys, tmp_path / "dev", protocol="5")
    try:
        terminal.net.start()
        assert not terminal.net.link.wait_connected(1.0)
        assert terminal.net.link.protocol == "5" and proxy.refused_v5 >= 1
    finally:
        terminal.stop()
