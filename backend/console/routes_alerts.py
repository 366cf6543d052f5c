"""Alerts: those open now, and the history of raises and clears (newest first, paged), each
with its deliveries to webhooks and mail; each alert's reason in the reader's language
(`reason_shown`) beside the English one it was raised with (`reason`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.console.alerts import reason_shown
from backend.console.auth import Operator
from backend.console.i18n import Translate
from backend.console.web import console, page, render, translator

PAGE_SIZE = 50


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


def shown(alerts: list[dict[str, Any]], _: Translate) -> list[dict[str, Any]]:
    """Each alert's reason in the language of `_` (in place; its stored parts dropped)."""
    for alert in alerts:
        alert["reason_shown"] = reason_shown(alert, _)
        alert.pop("reason_parts", None)
    return alerts


@page("viewer")
async def alerts_page(request: Request, operator: Operator) -> Response:
    c = console(request)
    number = _page_number(request)
    _ = translator(request)
    history = shown(c.alerts.history(PAGE_SIZE, (number - 1) * PAGE_SIZE), _)
    total = c.alerts.count()
    return render(
        request,
        "alerts.html",
        operator,
        open_alerts=shown(sorted(c.alerts.open().values(), key=lambda a: -a["raised_at"]), _),
        history=history,
        page=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        targets=[t.name for t in c.delivery.targets],
    )


@page("viewer")
async def alerts_json(request: Request, operator: Operator) -> Response:
    c = console(request)
    number = _page_number(request)
    _ = translator(request)
    return JSONResponse(
        {
            "open": shown(list(c.alerts.open().values()), _),
            "history": shown(c.alerts.history(PAGE_SIZE, (number - 1) * PAGE_SIZE), _),
            "page": number,
        }
    )


routes = [
    Route("/alerts", alerts_page, methods=["GET"]),
    Route("/api/alerts", alerts_json, methods=["GET"]),
]
