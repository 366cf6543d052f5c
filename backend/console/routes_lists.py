"""Transactions (searched, paged) and CSV exports of terminals, customers, transactions and
the audit log; each export is audited."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.console.auth import Operator
from backend.console.lists import TERMINAL_COLUMNS, export, page_number, search, to_csv
from backend.console.web import audit, console, page, problem, render

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
        return problem(request, f"there is no {name} export", "not_found", 404, operator)
    if not operator.can(EXPORT_ROLE[name]):
        return problem(request, f"this needs the {EXPORT_ROLE[name]} role", "forbidden", 403)
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


routes = [
    Route("/transactions", transactions, methods=["GET"]),
    Route("/export/{name}.csv", export_csv, methods=["GET"]),
]
