"""Transactions (searched, paged) and CSV exports of terminals, customers, transactions and
the audit log; each export is audited."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from backend.console.auth import Operator
from backend.console.i18n import COOKIE, LANGUAGES, N_
from backend.console.lists import TERMINAL_COLUMNS, export, page_number, search, to_csv
from backend.console.web import audit, console, page, problem, render, same_site_path

EXPORT_ROLE = {"terminals": "viewer", "customers": "viewer", "transactions": "viewer",
               "audit": "admin"}  # fmt: skip


@page("viewer")
async def transactions(request: Request, operator: Operator) -> Response:
    q = request.query_params.get("q", "")[:128]
    number = page_number(request.query_params.get("page"))
    rows, more = search(console(request).store, "transactions", q, number)
    return render(request, "transactions.html", operator, rows=rows, q=q, page=number, more=more)


@page("viewer")
async def export_csv(request: Request, operator: Operator) -> Response:
    name = request.path_params["name"]
    if name not in EXPORT_ROLE:
        return problem(
            request, N_("there is no {name} export"), "not_found", 404, operator, name=name
        )
    if not operator.can(EXPORT_ROLE[name]):
        return problem(
            request,
            N_("this needs the {role} role"),
            "forbidden",
            403,
            role=(EXPORT_ROLE[name], {}),
        )
    c = console(request)
    q = request.query_params.get("q", "")[:128]
    if name == "terminals":
        text = to_csv(c.fleet.rows(), TERMINAL_COLUMNS)
    else:
        text = export(c.store, name, q)
    audit(request, operator, "export_csv", name, q=q)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="blinkpay-{name}-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


async def choose_language(request: Request) -> Response:
    """The operator's language setting (a year-long cookie), then back where they were."""
    to = request.query_params.get("to", "")
    target = same_site_path(request.query_params.get("next"), request)
    response = RedirectResponse(target, status_code=303)
    if to in LANGUAGES:
        response.set_cookie(
            COOKIE, to, max_age=365 * 86400, httponly=True, samesite="strict", path="/"
        )
    return response


routes = [
    Route("/lang", choose_language, methods=["GET"]),
    Route("/transactions", transactions, methods=["GET"]),
    Route("/export/{name}.csv", export_csv, methods=["GET"]),
]
