"""Alerts: those open now, and the history of raises and clears (newest first, paged), each
with its deliveries to webhooks and mail."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.console.auth import Operator
from backend.console.web import console, page, render

PAGE_SIZE = 50


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


@page("viewer")
async def alerts_page(request: Request, operator: Operator) -> Response:
    c = console(request)
    number = _page_number(request)
    history = c.alerts.history(PAGE_SIZE, (number - 1) * PAGE_SIZE)
    total = c.alerts.count()
    return render(
        request,
        "alerts.html",
        operator,
        open_alerts=sorted(c.alerts.open().values(), key=lambda a: -a["raised_at"]),
        history=history,
        page=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        targets=[t.name for t in c.delivery.targets],
    )


@page("viewer")
async def alerts_json(request: Request, operator: Operator) -> Response:
    c = console(request)
    number = _page_number(request)
    return JSONResponse(
        {
            "open": list(c.alerts.open().values()),
            "history": c.alerts.history(PAGE_SIZE, (number - 1) * PAGE_SIZE),
            "page": number,
        }
    )


routes = [
    Route("/alerts", alerts_page, methods=["GET"]),
    Route("/api/alerts", alerts_json, methods=["GET"]),
]
