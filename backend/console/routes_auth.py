"""Login, logout, operators and the audit log."""

from __future__ import annotations

import asyncio
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from backend.console.auth import ROLES, AuthError, Operator
from backend.console.i18n import N_
from backend.console.lists import page_number, search
from backend.console.web import (
    COOKIE,
    FormRefused,
    audit,
    client,
    console,
    form_of,
    page,
    problem,
    read_form,
    refused,
    render,
    set_session_cookie,
    translator,
)

LOGIN_COOKIE = "blinkpay_login"
EXPIRED = N_("Your session expired; log in again.")


def _login_form(request: Request, status: int = 200, **ctx: object) -> Response:
    """The login form with a fresh token, also in a cookie: the POST must bring both
    (double submit), so another site cannot log a browser into an account of its choice."""
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", status=status, login_csrf=token, **ctx)
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, secure=True, samesite="strict", path="/login"
    )
    return response


async def login_page(request: Request) -> Response:
    expired = request.query_params.get("expired") == "1"
    message = translator(request)(EXPIRED) if expired else None
    return _login_form(request, message=message)


async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
    except FormRefused as exc:
        return refused(request, exc, 413)
    name = str(form.get("name", ""))[:64]
    password = str(form.get("password", ""))
    c = console(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, str(form.get("csrf", ""))):
        c.refuse("csrf_mismatch")
        message = translator(request)(N_("the login form was out of date; try again"))
        return _login_form(request, 403, message=message, name=name)
    try:
        # scrypt takes tens of milliseconds: on a worker thread, never on the event loop
        session_id = await asyncio.to_thread(c.auth.login, name, password, client(request))
    except AuthError as exc:
        c.refuse(exc.reason)
        c.store.audit(None, "login_refused", name, client(request), reason=exc.reason)
        status = 429 if exc.reason == "login_rate_limited" else 401
        return _login_form(request, status, message=exc.text(translator(request)), name=name)
    c.store.audit(name, "login", name, client(request))
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, session_id)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@page("viewer")
async def logout(request: Request, operator: Operator) -> Response:
    console(request).auth.logout(request.cookies.get(COOKIE))
    audit(request, operator, "logout", operator.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@page("admin")
async def operators(request: Request, operator: Operator) -> Response:
    return _operators_page(request, operator)


@page("admin")
async def add_operator(request: Request, operator: Operator) -> Response:
    form = await form_of(request)
    name, role = str(form.get("name", "")), str(form.get("role", ""))
    c = console(request)
    try:
        await asyncio.to_thread(c.auth.add_operator, name, role, str(form.get("password", "")))
    except AuthError as exc:
        c.refuse(exc.reason)
        return _operators_page(request, operator, 400, exc.text(translator(request)))
    audit(request, operator, "operator_add", name, role=role)
    return RedirectResponse("/operators", status_code=303)


def _operators_page(
    request: Request, operator: Operator, status: int = 200, message: str | None = None
) -> Response:
    return render(
        request,
        "operators.html",
        operator,
        status=status,
        operators=console(request).auth.operators(),
        roles=ROLES,
        message=message,
    )


ACTIONS = ("role", "disable", "enable", "password", "logout")


@page("admin")
async def change_operator(request: Request, operator: Operator) -> Response:
    """Promote/demote, disable/enable, reset the password, end the sessions (audited)."""
    name, action = request.path_params["name"], request.path_params["action"]
    if action not in ACTIONS:
        return problem(
            request, N_("no action {action}"), "unknown_action", 404, operator, action=action
        )
    form = await form_of(request)
    auth = console(request).auth
    detail: dict[str, object] = {}
    try:
        if action == "role":
            detail["role"] = role = str(form.get("role", ""))
            await asyncio.to_thread(auth.set_role, name, role)
        elif action in ("disable", "enable"):
            await asyncio.to_thread(auth.set_disabled, name, action == "disable")
        elif action == "password":
            await asyncio.to_thread(auth.reset_password, name, str(form.get("password", "")))
        else:
            detail["sessions"] = await asyncio.to_thread(auth.end_sessions, name)
    except AuthError as exc:
        console(request).refuse(exc.reason)
        return _operators_page(request, operator, 400, exc.text(translator(request)))
    audit(request, operator, f"operator_{action}", name, **detail)
    if name == operator.name and action != "enable":
        return RedirectResponse("/login", status_code=303)  # their own session just ended
    return RedirectResponse("/operators", status_code=303)


@page("admin")
async def audit_log(request: Request, operator: Operator) -> Response:
    q = request.query_params.get("q", "")[:128]
    number = page_number(request.query_params.get("page"))
    rows, more = search(console(request).store, "audit", q, number)
    return render(request, "audit.html", operator, rows=rows, q=q, page=number, more=more)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/operators", operators, methods=["GET"]),
    Route("/operators", add_operator, methods=["POST"]),
    Route("/operators/{name}/{action}", change_operator, methods=["POST"]),
    Route("/audit", audit_log, methods=["GET"]),
]
