"""Web plumbing shared by the console's pages: templates, the session cookie, role checks,
CSRF checks on every state-changing request, and clear error pages with counted reasons."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from backend.console.auth import Operator, csrf_ok
from backend.console.service import Console
from device.net.schemas import ID_RULE, valid_id

HERE = Path(__file__).parent
COOKIE = "blinkpay_console"
MAX_BODY = 5 * 4 * 1024 * 1024 + 64 * 1024  # five photos at the per-photo limit, and fields

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.filters["when"] = _when

Endpoint = Callable[[Request], Awaitable[Response]]
Page = Callable[[Request, Operator], Awaitable[Response]]


def console(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def render(
    request: Request,
    template: str,
    operator: Operator | None = None,
    status: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    html = templates.get_template(template).render(
        request=request, operator=operator, now=time.time(), **ctx
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    # Everything is served from here: no CDN, no inline script.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:;"
        " style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def problem(
    request: Request, message: str, reason: str, status: int, operator: Operator | None = None
) -> HTMLResponse:
    """A clear message on a page, and the reason counted."""
    console(request).refuse(reason)
    return render(request, "problem.html", operator, status=status, message=message, reason=reason)


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(COOKIE, session_id, httponly=True, secure=True, samesite="strict", path="/")


class FormRefused(Exception):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


async def read_form(request: Request) -> FormData:
    """The form; FormRefused when it is larger than any form of the console or unreadable."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise FormRefused("the upload is too large (at most five 4 MB photos)", "oversized_upload")
    try:
        # room for a blink burst; the photo count has its own clear message
        return await request.form(max_files=64, max_fields=100, max_part_size=MAX_BODY)
    except HTTPException as exc:
        raise FormRefused(f"the form could not be read: {exc.detail}", "bad_form") from None


def page(role: str) -> Callable[[Page], Endpoint]:
    """A page for `role` and above; POSTs must carry the session's CSRF token."""

    def wrap(handler: Page) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            found = console(request).auth.session(request.cookies.get(COOKIE))
            if found is None or isinstance(found, str):
                if found == "expired":
                    console(request).refuse("session_expired")
                target = "/login?expired=1" if found == "expired" else "/login"
                if request.method != "GET" or request.url.path.startswith(("/api/", "/events/")):
                    return problem(
                        request,
                        "your session has expired; log in again",
                        "session_expired" if found else "not_logged_in",
                        401,
                    )
                return RedirectResponse(target, status_code=303)
            operator: Operator = found
            device_id = request.path_params.get("device_id")
            if device_id is not None and not valid_id(device_id):
                return problem(
                    request, f"not a device id: {ID_RULE}", "bad_device_id", 404, operator
                )
            if not operator.can(role):
                return problem(request, f"this needs the {role} role", "forbidden", 403, operator)
            if request.method == "POST":
                try:
                    request.state.form = form = await read_form(request)
                except FormRefused as exc:
                    return problem(request, str(exc), exc.reason, 413, operator)
                supplied = request.headers.get("x-csrf-token") or str(form.get("csrf", ""))
                if not csrf_ok(operator, supplied):
                    return problem(
                        request,
                        "the form was out of date (security token mismatch); reload the page"
                        " and try again",
                        "csrf_mismatch",
                        403,
                        operator,
                    )
            return await handler(request, operator)

        return endpoint

    return wrap


async def form_of(request: Request) -> FormData:
    """The form page() read and checked (POST handlers only)."""
    form: FormData = request.state.form
    return form


def audit(request: Request, operator: Operator, action: str, target: str, **detail: Any) -> None:
    console(request).store.audit(operator.name, action, target, client(request), **detail)
