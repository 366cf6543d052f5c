"""A TCP proxy in front of the rig's broker whose link can be cut and healed: a real network
partition for one client (cut: every connection through it is closed and new ones are
closed as they come; healed: they pass again). It keeps the tail of what it passed from
the broker to the client, so a test knows a message reached the client's socket."""

from __future__ import annotations

import contextlib
import socket
import threading

KEPT = 1 << 20  # bytes of the broker -> client stream kept


class Partition:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._cut = False
        self._open: list[socket.socket] = []
        self._down = bytearray()  # broker -> client, the last KEPT bytes
        threading.Thread(target=self._accept, name="partition", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._open = self._open, []
        for sock in sockets:
            _close(sock)

    def passed_down(self, marker: bytes) -> bool:
        """Whether `marker` went from the broker to the client."""
        with self._lock:
            return marker in self._down

    def heal(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        _close(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                _close(conn)
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(conn)
                continue
            up.settimeout(None)
            with self._lock:
                self._open += [conn, up]
            threading.Thread(target=self._pump, args=(conn, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if down:
                    with self._lock:
                        self._down += data
                        del self._down[:-KEPT]
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
