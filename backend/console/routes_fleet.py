"""The fleet table, a terminal's page, live updates (server-sent events), remote config
and commands."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from backend.console import labels
from backend.console.auth import Operator
from backend.console.commands import CommandRefused
from backend.console.i18n import N_
from backend.console.remote import ConfigRefused, baseline, diff, parse_partial
from backend.console.web import (
    COOKIE,
    client,
    console,
    form_of,
    language,
    localize,
    page,
    problem,
    refused,
    render,
    translator,
)
from device.net.topics import COMMAND_NAMES

POLL_S = 0.25
# A fleet of a thousand terminals changes several times a second: one page of it a second
# is enough to watch, and what each push costs (the whole fleet, ~0.4 KB a terminal) stays
# bounded.
PUSH_MIN_S = 1.0
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
    snap = await asyncio.to_thread(_localized_snapshot, request)
    sites = sorted({r["site"] for r in snap["terminals"] if r["site"]})
    return render(
        request,
        "fleet.html",
        operator,
        snap=snap,
        rows=snap["terminals"],
        sites=sites,
        commands=[n for n in COMMAND_NAMES if operator.can(COMMAND_ROLE[n])],
    )


def _stream(request: Request, snapshot: Callable[[], Any]) -> StreamingResponse:
    fleet = console(request).fleet
    auth, session_id = console(request).auth, request.cookies.get(COOKIE)

    async def events() -> AsyncIterator[str]:
        seen, idle, checked, alive, pushed = -1, 0.0, 0.0, True, -PUSH_MIN_S
        while not await request.is_disconnected():
            now = time.monotonic()
            if now - checked >= SESSION_CHECK_S:
                checked = now
                alive = await asyncio.to_thread(auth.alive, session_id)
            if not alive:
                # logout, a disabled operator, ended sessions, expiry: the stream ends too
                yield "event: session-ended\ndata: {}\n\n"
                return
            if fleet.version != seen and now - pushed >= PUSH_MIN_S:
                seen, pushed = fleet.version, now
                # built in a worker thread: the store's queries never hold up the event loop
                data = await asyncio.to_thread(snapshot)
                yield f"data: {json.dumps(data, default=str)}\n\n"
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
    return _stream(request, lambda: _localized_snapshot(request))


def _localized_snapshot(request: Request) -> dict[str, Any]:
    snap = console(request).fleet_snapshot()
    localize(snap["terminals"], language(request))
    return snap


@page("viewer")
async def fleet_json(request: Request, operator: Operator) -> Response:
    """The fleet, health reasons in the request's language (Accept-Language or setting)."""
    return JSONResponse(await asyncio.to_thread(_localized_snapshot, request))


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
    detail["events"] = c.history.events(device_id)  # kept in the store: across restarts
    detail["commands"] = c.commands.of_device(device_id)
    localize([detail], language(request))
    _ = translator(request)
    for event in detail["events"]:  # the codes in words, for the page's script
        event["shown"] = labels.event_shown(event, _)
    detail["refused_shown"] = [
        {**labels.shown("refusal", reason, _), "n": n}
        for reason, n in sorted((detail.get("rejected") or {}).items())
    ]
    return detail


RANGES = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


@page("viewer")
async def device_history(request: Request, operator: Operator) -> Response:
    """Telemetry points of one terminal over a range (?range=1h, or ?since=&until= in Unix
    seconds): every report for short recent ranges, per-minute aggregates for longer ones."""
    c = console(request)
    params = request.query_params
    now = time.time()
    try:
        if "since" in params:
            since = float(params["since"])
            until = float(params.get("until", now))
        else:
            since, until = now - RANGES[params.get("range", "1h")], now
        if not (math.isfinite(since) and math.isfinite(until) and since < until):
            raise ValueError("since must be before until")
    except (KeyError, ValueError) as exc:
        c.refuse("bad_range")
        error = translator(request)(
            N_("give range as one of {ranges}, or since < until ({error})"),
            ranges=", ".join(RANGES),
            error=str(exc),
        )
        return JSONResponse({"error": error}, status_code=400)
    return JSONResponse(c.history.series(request.path_params["device_id"], since, until, now))


@page("viewer")
async def device_page(request: Request, operator: Operator) -> Response:
    device_id = request.path_params["device_id"]
    view = _device_view(request, device_id)
    if view is None:
        return problem(
            request,
            N_("no terminal {device_id} has been seen"),
            "unknown_device",
            404,
            operator,
            device_id=device_id,
        )
    return render(
        request, "device.html", operator, d=view, commands=COMMAND_NAMES, ranges=list(RANGES)
    )


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
            message=exc.text(translator(request)),
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
        return refused(request, exc, 400, operator)
    console(request).send_config(operator.name, device_id, change, client(request))
    return RedirectResponse(f"/devices/{device_id}#config", status_code=303)


def _command_refused(request: Request, operator: Operator, name: str) -> Response | None:
    """A command this console does not know, or one the operator's role may not send."""
    if name not in COMMAND_NAMES:
        return problem(
            request, N_("no command {name}"), "unknown_command", 404, operator, name=name
        )
    if not operator.can(COMMAND_ROLE[name]):
        return problem(
            request,
            N_("{name} needs the {role} role"),
            "forbidden",
            403,
            operator,
            name=(name, {}),  # the command and the role shown translated
            role=(COMMAND_ROLE[name], {}),
        )
    return None


@page("operator")
async def command(request: Request, operator: Operator) -> Response:
    device_id, name = request.path_params["device_id"], request.path_params["name"]
    if (refusal := _command_refused(request, operator, name)) is not None:
        return refusal
    try:
        console(request).send_command(operator.name, device_id, name, client(request))
    except CommandRefused as exc:
        return refused(request, exc, 409, operator)
    return RedirectResponse(f"/devices/{device_id}#commands", status_code=303)


def _site_devices(request: Request, site: str) -> list[str]:
    rows = console(request).fleet.rows()
    return [r["device_id"] for r in rows if site and r["site"] == site]


@page("operator")
async def bulk_command(request: Request, operator: Operator) -> Response:
    """One command to every terminal of a site; each is stored and waits or goes."""
    form = await form_of(request)
    site, name = str(form.get("site", "")), str(form.get("name", ""))
    if (refusal := _command_refused(request, operator, name)) is not None:
        return refusal
    devices = _site_devices(request, site)
    if not devices:
        return problem(
            request, N_("no terminal of site {site} is known"), "no_terminals", 404, site=repr(site)
        )
    sent, refusals, _ = 0, [], translator(request)
    for device_id in devices:
        try:
            console(request).send_command(operator.name, device_id, name, client(request))
            sent += 1
        except CommandRefused as exc:
            refusals.append(f"{device_id}: {exc.text(_)}")
    return render(
        request,
        "bulk.html",
        operator,
        what=_(N_("{name} to site {site}"), name=name, site=site),
        sent=sent,
        devices=devices,
        refused=refusals,
    )


@page("admin")
async def bulk_config(request: Request, operator: Operator) -> Response:
    """One partial config to every terminal of a site, each with its own next version."""
    form = await form_of(request)
    site, text = str(form.get("site", "")), str(form.get("config", ""))
    try:
        change = parse_partial(text)
    except ConfigRefused as exc:
        return refused(request, exc, 400, operator)
    devices = _site_devices(request, site)
    if not devices:
        return problem(
            request, N_("no terminal of site {site} is known"), "no_terminals", 404, site=repr(site)
        )
    for device_id in devices:
        console(request).send_config(operator.name, device_id, change, client(request))
    return render(
        request,
        "bulk.html",
        operator,
        what=translator(request)(N_("config to site {site}"), site=site),
        sent=len(devices),
        devices=devices,
        refused=[],
    )


routes = [
    Route("/", fleet_page, methods=["GET"]),
    Route("/events/fleet", fleet_events, methods=["GET"]),
    Route("/api/fleet", fleet_json, methods=["GET"]),
    Route("/devices/{device_id}", device_page, methods=["GET"]),
    Route("/events/devices/{device_id}", device_events, methods=["GET"]),
    Route("/api/devices/{device_id}/history", device_history, methods=["GET"]),
    Route("/devices/{device_id}/config/preview", config_preview, methods=["POST"]),
    Route("/devices/{device_id}/config", config_send, methods=["POST"]),
    Route("/devices/{device_id}/cmd/{name}", command, methods=["POST"]),
    Route("/fleet/cmd", bulk_command, methods=["POST"]),
    Route("/fleet/config", bulk_config, methods=["POST"]),
]
