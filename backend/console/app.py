"""The console's Starlette app and how `blinkpay-host console` serves it (uvicorn)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backend.config import HostConfig
from backend.console import (
    routes_alerts,
    routes_auth,
    routes_customers,
    routes_fleet,
    routes_lists,
    routes_shards,
)
from backend.console.i18n import N_
from backend.console.metrics import render_metrics
from backend.console.service import Console
from backend.console.web import HERE, console, problem
from device.errors import BlinkpayError

log = logging.getLogger("blinkpay.console")


async def metrics(request: Request) -> Response:
    return PlainTextResponse(
        render_metrics(console(request)), media_type="text/plain; version=0.0.4"
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def not_found(request: Request, exc: Exception) -> Response:
    return problem(request, N_("there is no such page"), "not_found", 404)


def make_app(console_: Console) -> Starlette:
    app = Starlette(
        routes=[
            *routes_auth.routes,
            *routes_fleet.routes,
            *routes_customers.routes,
            *routes_shards.routes,
            *routes_alerts.routes,
            *routes_lists.routes,
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={404: not_found},
    )
    app.state.console = console_
    return app


def load_pipeline(terminal_config: Path | None):  # type: ignore[no-untyped-def]
    """The terminal's own FacePipeline (its models and quality gates) for enrolment."""
    from device.config import load_terminal_config
    from device.vision.pipeline import FacePipeline

    return FacePipeline.from_config(load_terminal_config(terminal_config).vision)


class ConsoleServer:
    """uvicorn on a thread (the demo) or in the foreground (`blinkpay-host console`)."""

    def __init__(
        self,
        console_: Console,
        host: str = "127.0.0.1",
        port: int = 8080,
        trusted_proxies: list[str] | None = None,
    ) -> None:
        """`trusted_proxies`: the only peers whose X-Forwarded-For is believed (the client
        address the login limit and the audit log use); none by default."""
        import uvicorn

        self.console = console_
        trusted = [ip for ip in trusted_proxies or [] if ip]
        config = uvicorn.Config(
            make_app(console_),
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
            lifespan="off",
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        config = self.server.config
        return f"http://{config.host}:{config.port}"

    def run(self) -> None:
        self.server.run()

    def start(self, wait_s: float = 30.0) -> ConsoleServer:
        """On a thread; returns once uvicorn listens (or raises when it could not)."""
        self._thread = threading.Thread(target=self.run, name="console-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + wait_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise BlinkpayError(f"the console could not listen on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def serve_console(
    config: HostConfig,
    terminal_config: Path | None,
    listen: str,
    *,
    also_serve: bool = False,
    trusted_proxies: list[str] | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn's handlers); with also_serve, a serving host
    (authorizations, ledger, snapshots) runs in the same process on the same database."""
    from backend.broker import parse_listen
    from backend.host import PaymentHost

    host, port = parse_listen(listen)
    console_ = Console(config, load_pipeline(terminal_config)).start(wait_s=None)
    payment_host = PaymentHost(config).start(wait_s=None) if also_serve else None
    server = ConsoleServer(console_, host, port, trusted_proxies)
    print(f"console: {server.url}", flush=True)
    try:
        server.run()
    finally:
        if payment_host is not None:
            payment_host.stop()
        console_.stop()
    return 0
