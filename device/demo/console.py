"""`blinkpay demo --console`: after the scenes, the operator's console on the demo's host
database and broker, with a throw-away admin login, until the person trying it stops it."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable

from device.demo.rig import DemoRig

Narrate = Callable[[str], None]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keep_console(
    narrate: Narrate, wait: Callable[[str], None], listen: str = "127.0.0.1:8080"
) -> Callable[[DemoRig], None]:
    """The hook run_demo calls before it tears the rig down: serve the console, print its
    address and login, then `wait(url)` (until Ctrl-C in the CLI; a request in tests)."""

    def after(rig: DemoRig) -> None:
        from backend.console.app import ConsoleServer
        from backend.console.service import Console

        if rig.broker is None or rig.parts is None:
            narrate("console: needs the demo's broker (mosquitto); not started")
            return
        host, _, port = listen.rpartition(":")
        console = Console(rig.host.config, rig.parts.pipeline).start()
        password = secrets.token_urlsafe(12)
        console.auth.add_operator("demo", "admin", password)
        server = ConsoleServer(console, host or "127.0.0.1", int(port) or free_loopback_port())
        server.start()
        try:
            narrate(f"\nConsole: {server.url}  (log in as demo / {password}; Ctrl-C to stop)")
            wait(server.url)
        finally:
            server.stop()
            console.stop()

    return after
