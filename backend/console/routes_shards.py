"""Shards: each shard's embedder, a migration to another one, its coverage (how many
customers have a template of the new embedder) and the operator's switch (docs/console.md,
"Shards"). Every change is audited and published as a snapshot, which tells the terminals."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from backend.console.auth import Operator
from backend.console.i18n import N_
from backend.console.web import audit, console, form_of, page, problem, refused, render
from device.errors import BlinkpayError, TranslatableError

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$")


def _rows(request: Request) -> list[dict[str, Any]]:
    c = console(request)
    return [c.host.migrations.coverage(shard_id) for shard_id in c.sites()]


@page("viewer")
async def shards(request: Request, operator: Operator) -> Response:
    return render(request, "shards.html", operator, rows=_rows(request))


@page("viewer")
async def shards_json(request: Request, operator: Operator) -> Response:
    return JSONResponse(_rows(request))


@page("admin")
async def shard_action(request: Request, operator: Operator) -> Response:
    shard_id, action = request.path_params["shard_id"], request.path_params["action"]
    c = console(request)
    if shard_id not in c.sites():
        return problem(
            request, N_("no shard {shard_id}"), "unknown_shard", 404, operator, shard_id=shard_id
        )
    form = await form_of(request)
    migrations = c.host.migrations
    detail: dict[str, Any] = {}
    try:
        if action == "migrate":
            version, dim = str(form.get("to", "")).strip(), str(form.get("dim", "")).strip()
            if not VERSION.match(version) or not dim.isdigit():
                raise TranslatableError(N_("give the new embedder's version and its dim"))
            migrations.start(shard_id, version, int(dim))
            detail = {"to": version, "dim": int(dim)}
        elif action == "cancel":
            migrations.cancel(shard_id)
        elif action == "switch":
            try:
                least = float(str(form.get("min_coverage", "0")).strip() or 0) / 100.0
            except ValueError:
                raise TranslatableError(N_("the least coverage is a percentage")) from None
            if not 0.0 <= least <= 1.0:
                raise TranslatableError(N_("the least coverage is a percentage from 0 to 100"))
            done = migrations.switch(shard_id, least)
            detail = {
                "embedder_version": done["switched_to"],
                "covered": done["covered"],
                "customers": done["customers"],
            }
        else:
            return problem(
                request, N_("no action {action}"), "unknown_action", 404, operator, action=action
            )
    except BlinkpayError as exc:  # this page's and the migrations' refusals, translated
        return refused(request, exc, 400, operator, "shard_refused")
    audit(request, operator, f"shard_{action}", shard_id, **detail)
    c.host.publish_snapshot(shard_id)
    return RedirectResponse("/shards", status_code=303)


routes = [
    Route("/shards", shards, methods=["GET"]),
    Route("/api/shards", shards_json, methods=["GET"]),
    Route("/shards/{shard_id}/{action}", shard_action, methods=["POST"]),
]
