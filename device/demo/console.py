"""`blinkpay demo --console`: the operator's console on the demo's host database and broker,
recording from the first scene (so the fleet shows the demo's approvals and refusals), then
served with a throw-away admin login until the person trying it stops it."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from typing import Any

from device.demo.rig import DemoRig

Narrate = Callable[[str], None]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoConsole:
    """run_demo calls start(rig) before the scenes and serve(rig) after them, then stop()."""

    def __init__(
        self, narrate: Narrate, wait: Callable[[str], None], listen: str = "127.0.0.1:8080"
    ) -> None:
        self.narrate = narrate
        self.wait = wait  # until Ctrl-C in the CLI; a visit in tests
        self.listen = listen
        self.console: Any = None

    def start(self, rig: DemoRig) -> None:
        """The console's service on the rig's host and broker: it hears the terminal's
        status, telemetry and events from now on."""
        from backend.console.service import Console

        if rig.broker is None or rig.parts is None:
            self.narrate("console: needs the demo's broker (mosquitto); not started")
            return
        self.console = Console(rig.host.config, rig.parts.pipeline).start()

    def serve(self, rig: DemoRig) -> None:
        """Serve the pages, print the address and login, then wait(url)."""
        from backend.console.app import ConsoleServer

        if self.console is None:
            return
        host, _, port = self.listen.rpartition(":")
        password = secrets.token_urlsafe(12)
        self.console.auth.add_operator("demo", "admin", password)
        server = ConsoleServer(self.console, host or "127.0.0.1", int(port) or free_loopback_port())
        server.start()
        try:
            self.narrate(f"\nConsole: {server.url}  (log in as demo / {password}; Ctrl-C to stop)")
            self.wait(server.url)
        finally:
            server.stop()

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()
            self.console = None
