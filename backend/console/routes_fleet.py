"""The fleet table, a terminal's page, live updates (server-sent events), remote config
and commands."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from backend.console.auth import Operator
from backend.console.remote import ConfigRefused, baseline, diff, parse_partial
from backend.console.web import COOKIE, client, console, form_of, page, problem, render
from device.net.topics import COMMAND_NAMES

POLL_S = 0.25
SESSION_CHECK_S = 1.0  # a stream outlives its session by at most this
KEEPALIVE_S = 15.0
# Commands a viewer may not run; gate-test and reboot move hardware or stop payments.
COMMAND_ROLE = {
    "resync": "operator",
    "selftest": "operator",
    "gate-test": "admin",
    "reboot": "admin",
}


@page("viewer")
async def fleet_page(request: Request, operator: Operator) -> Response:
    rows = console(request).fleet.rows()
    sites = sorted({r["site"] for r in rows if r["site"]})
    return render(request, "fleet.html", operator, rows=rows, sites=sites)


def _stream(request: Request, snapshot: Callable[[], Any]) -> StreamingResponse:
    fleet = console(request).fleet
    auth, session_id = console(request).auth, request.cookies.get(COOKIE)

    async def events() -> AsyncIterator[str]:
        seen, idle, checked, alive = -1, 0.0, 0.0, True
        while not await request.is_disconnected():
            now = time.monotonic()
            if now - checked >= SESSION_CHECK_S:
                checked = now
                alive = await asyncio.to_thread(auth.alive, session_id)
            if not alive:
                # logout, a disabled operator, ended sessions, expiry: the stream ends too
                yield "event: session-ended\ndata: {}\n\n"
                return
            if fleet.version != seen:
                seen = fleet.version
                yield f"data: {json.dumps(snapshot(), default=str)}\n\n"
                idle = 0.0
            elif idle >= KEEPALIVE_S:
                yield ": keepalive\n\n"
                idle = 0.0
            await asyncio.sleep(POLL_S)
            idle += POLL_S

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@page("viewer")
async def fleet_events(request: Request, operator: Operator) -> Response:
    return _stream(request, console(request).fleet.rows)


@page("viewer")
async def fleet_json(request: Request, operator: Operator) -> Response:
    return JSONResponse(console(request).fleet.rows())


def _device_view(request: Request, device_id: str) -> dict[str, Any] | None:
    c = console(request)
    detail = c.fleet.detail(device_id)
    if detail is None:
        return None
    detail["transactions"] = c.store.query(
        "SELECT tx_id, token, amount, status, result, received_at FROM transactions"
        " WHERE device_id = ? ORDER BY received_at DESC LIMIT 20",
        (device_id,),
    )
    detail["configs"] = c.configs(device_id)
    return detail


@page("viewer")
async def device_page(request: Request, operator: Operator) -> Response:
    device_id = request.path_params["device_id"]
    view = _device_view(request, device_id)
    if view is None:
        return problem(
            request, f"no terminal {device_id} has been seen", "unknown_device", 404, operator
        )
    return render(request, "device.html", operator, d=view, commands=COMMAND_NAMES)


@page("viewer")
async def device_events(request: Request, operator: Operator) -> Response:
    device_id = request.path_params["device_id"]
    return _stream(request, lambda: _device_view(request, device_id))


def _applied(request: Request, device_id: str) -> list[dict[str, Any]]:
    rows = console(request).configs(device_id)
    return [json.loads(r["config"]) for r in reversed(rows) if r["status"] == "applied"]


@page("admin")
async def config_preview(request: Request, operator: Operator) -> Response:
    device_id = request.path_params["device_id"]
    text = str((await form_of(request)).get("config", ""))
    try:
        change = parse_partial(text)
    except ConfigRefused as exc:
        console(request).refuse(exc.reason)
        return render(
            request,
            "config.html",
            operator,
            device_id=device_id,
            text=text,
            message=str(exc),
            status=400,
        )
    rows = diff(baseline(_applied(request, device_id)), change)
    return render(
        request,
        "config.html",
        operator,
        device_id=device_id,
        text=text,
        diff=rows,
        version=console(request).next_config_version(device_id),
    )


@page("admin")
async def config_send(request: Request, operator: Operator) -> Response:
    device_id = request.path_params["device_id"]
    text = str((await form_of(request)).get("config", ""))
    try:
        change = parse_partial(text)
    except ConfigRefused as exc:
        return problem(request, str(exc), exc.reason, 400, operator)
    console(request).send_config(operator.name, device_id, change, client(request))
    return RedirectResponse(f"/devices/{device_id}#config", status_code=303)


@page("operator")
async def command(request: Request, operator: Operator) -> Response:
    device_id, name = request.path_params["device_id"], request.path_params["name"]
    if name not in COMMAND_NAMES:
        return problem(request, f"no command {name}", "unknown_command", 404, operator)
    if not operator.can(COMMAND_ROLE[name]):
        return problem(
            request, f"{name} needs the {COMMAND_ROLE[name]} role", "forbidden", 403, operator
        )
    console(request).send_command(operator.name, device_id, name, client(request))
    return RedirectResponse(f"/devices/{device_id}#commands", status_code=303)


routes = [
    Route("/", fleet_page, methods=["GET"]),
    Route("/events/fleet", fleet_events, methods=["GET"]),
    Route("/api/fleet", fleet_json, methods=["GET"]),
    Route("/devices/{device_id}", device_page, methods=["GET"]),
    Route("/events/devices/{device_id}", device_events, methods=["GET"]),
    Route("/devices/{device_id}/config/preview", config_preview, methods=["POST"]),
    Route("/devices/{device_id}/config", config_send, methods=["POST"]),
    Route("/devices/{device_id}/cmd/{name}", command, methods=["POST"]),
]
