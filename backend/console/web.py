"""Web plumbing shared by the console's pages: templates, the session cookie, role checks,
CSRF checks on every state-changing request, and clear error pages with counted reasons."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from backend.console import i18n, labels
from backend.console.auth import Operator, csrf_ok
from backend.console.health import LABELS, reason_in
from backend.console.service import Console
from device.errors import BlinkpayError, TranslatableError
from device.net.schemas import ID_RULE, valid_id

HERE = Path(__file__).parent
COOKIE = "blinkpay_console"
MAX_BODY = 5 * 4 * 1024 * 1024 + 64 * 1024  # five photos at the per-photo limit, and fields

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)


@pass_context
def _when(ctx: Context, ts: float | None) -> str:
    """A time in the site's time zone."""
    return i18n.when(ts, ctx.get("tz") or "Etc/UTC")


@pass_context
def _money(ctx: Context, minor: int | None, currency: str) -> str:
    """Minor units with their currency, as the page's language writes them."""
    return i18n.money(minor, currency, ctx.get("lang") or i18n.DEFAULT)


def coded(kind: str, code: object, _: i18n.Translate) -> Markup:
    """A code in words, the code beside it in small type (a field engineer greps the logs
    for it); a code without words (a newer terminal's) as it is."""
    text = str(code)
    words = labels.label(kind, text, _)
    if words is None:
        return Markup('<span class="coded" data-code="{0}"><code>{0}</code></span>').format(text)
    return Markup(
        '<span class="coded" data-code="{0}">{1} <small><code>{0}</code></small></span>'
    ).format(text, words)


def _translator(ctx: Context) -> i18n.Translate:
    translate: i18n.Translate | None = ctx.get("_")
    return translate or i18n.gettext(ctx.get("lang") or i18n.DEFAULT)


@pass_context
def _label(ctx: Context, code: object, kind: str) -> Markup:
    """{{ e.type|label("event") }}: one code of a kind of backend/console/labels.py."""
    if code is None or code == "":
        return Markup("")
    return coded(kind, code, _translator(ctx))


@pass_context
def _labels(ctx: Context, codes: object, kind: str) -> Markup:
    """{{ e.reasons|labels("reason") }}: a list of codes, one under the other."""
    if not isinstance(codes, list | tuple) or not codes:
        return Markup("")
    _ = _translator(ctx)
    return Markup('<span class="coded-list">{0}</span>').format(
        Markup("").join(coded(kind, code, _) for code in codes)
    )


@pass_context
def _words(ctx: Context, code: object, kind: str) -> str:
    """{{ d.event|words("alert") }}: the words alone, inside a translated sentence (the code
    itself when it has none)."""
    return labels.label(kind, code, _translator(ctx)) or str(code)


def _html_lang(code: str) -> str:
    """A catalogue's code as an HTML lang tag (zh_CN -> zh-CN)."""
    return code.replace("_", "-")


templates.filters["html_lang"] = _html_lang
templates.filters["when"] = _when
templates.filters["money"] = _money
templates.filters["label"] = _label
templates.filters["labels"] = _labels
templates.filters["words"] = _words

# Strings the pages' scripts show, translated into the page's language (a JSON island).
JS_MESSAGES = [
    "Console's broker link: up",
    "Console's broker link: DOWN since {since}: no terminal's state is current",
    "Console's broker link: DOWN",
    "{n} approved, {m} refused",
    "{n} points, every report, {tz}",
    "{n} points, per-minute averages, {tz}",
    "{label}: no data in this range.",
    "{label}: {n} points from {first} to {last}; lowest {low}, highest {high}, latest {latest}.",
    "waits until {when}",
    "sent {n} times",
    # the commands (device.net.topics.COMMAND_NAMES), as the device page lists them
    "resync",
    "selftest",
    "gate-test",
    "reboot",
    # the console's own command details (commands.py), shown in the Result column
    "the terminal did not come back in time",
    "no result from the terminal",
    # the terminal's answer to the last config change
    "version {version}: {status}",
    "applied",
    "refused",
    "none yet",
    "none refused",  # the device page's refused messages
    "Page {page} of {pages}",
    "terminals shown: {n}",
    "live updates: on",
    "live updates: reconnecting…",
    "s ago",
    "min ago",
    "h ago",
    "d ago",
    "Frame rate",
    "Embedding p95",
    "Detection p95",
    "Approvals",
    "Liveness refusals",
    "Declines",
    "Outbox",
    "CPU temperature",
    "frames/s",
    "per min",
    "rows",
    "behind",
    "pending",
    "delivered",
    "done",
    "failed",
    "timed_out",
    "expired",
    # enrol.js: the camera, the photos' quality and the blink check
    "Quality: {quality}",
    "good: one face, {px} px, yaw {yaw}°, pitch {pitch}°, sharpness {sharpness}, eyes open",
    "not yet: {problems}",
    "{n} camera photo(s) taken",
    "No camera: {error} (use photo files)",
    "photo {n} taken",
    "Not checked: {error}",
    "the console did not answer ({status}): reload the page or log in again",
    "not taken: {why}",
    "Blink: look at the camera and blink once now…",
    "Blink: checking {n} frames…",
    "Blink: seen, a live face ({n} frames)",
    "Blink: not seen ({why}); try again",
]


def language(request: Request) -> str:
    return i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))


def translator(request: Request) -> i18n.Translate:
    """_() in the request's language, for what a route sends as JSON or text."""
    return i18n.gettext(language(request))


def localize(rows: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Each terminal's health label and reason in `lang` (in place; returns the rows)."""
    _ = i18n.gettext(lang)
    for row in rows:
        parts = row.pop("health_parts", None)
        if parts is not None:
            row["health_reason"] = reason_in(parts, _)
        row["health_label"] = _(LABELS.get(row["health"], row["health"]))
        last = row.get("last_tx")
        if last:  # a copy: the fleet's figures keep theirs between requests
            row["last_tx"] = {**last, "status_shown": labels.shown("status", last["status"], _)}
    return rows


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
    c = console(request)
    lang = language(request)
    _ = i18n.gettext(lang)
    ctx.setdefault("currency", c.config.currency)
    html = templates.get_template(template).render(
        request=request,
        operator=operator,
        now=time.time(),
        lang=lang,
        languages=i18n.LANGUAGES,
        tz=c.config.console.timezone,
        _=_,
        js_messages={m: _(m) for m in JS_MESSAGES},
        health_labels=LABELS,
        **ctx,
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
    request: Request,
    message: str,
    reason: str,
    status: int,
    operator: Operator | None = None,
    /,
    **args: Any,
) -> HTMLResponse:
    """A clear message on a page, in the operator's language, and the reason counted.
    `message` is an N_ message, its {arguments} given by name (a Part is translated too);
    tests/console/test_i18n.py checks every call and wants the message's translation."""
    text = i18n.say(translator(request), message, args)
    return _problem_page(request, text, reason, status, operator)


def refused(
    request: Request,
    exc: BlinkpayError,
    status: int,
    operator: Operator | None = None,
    reason: str | None = None,
) -> HTMLResponse:
    """The page of a refusal: its message in the operator's language, its reason (or
    `reason`) counted. Another BlinkpayError comes from a layer that speaks English only
    (a database failure, say): its text is shown as it is, under the translated heading."""
    if isinstance(exc, TranslatableError):
        text = exc.text(translator(request))
        return _problem_page(request, text, reason or exc.reason, status, operator)
    return _problem_page(request, str(exc), reason or "refused", status, operator)


def _problem_page(
    request: Request, text: str, reason: str, status: int, operator: Operator | None
) -> HTMLResponse:
    console(request).refuse(reason)
    return render(
        request,
        "problem.html",
        operator,
        status=status,
        problem=text,
        reason=reason,
        back=same_site_path(request.headers.get("referer"), request),
    )


def same_site_path(url: str | None, request: Request) -> str:
    """The path of a URL of this console (a Back link, a redirect target), else "/"."""
    if not url:
        return "/"
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.url.netloc:
        return "/"
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return "/"
    return path + (f"?{parts.query}" if parts.query else "")


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(COOKIE, session_id, httponly=True, secure=True, samesite="strict", path="/")


class FormRefused(TranslatableError):
    """A form larger than any of the console's, or unreadable."""


async def read_form(request: Request) -> FormData:
    """The form; FormRefused when it is larger than any form of the console or unreadable."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise FormRefused(
            i18n.N_("the upload is too large (at most five 4 MB photos)"), "oversized_upload"
        )
    try:
        # room for a blink burst; the photo count has its own clear message
        return await request.form(max_files=64, max_fields=100, max_part_size=MAX_BODY)
    except HTTPException as exc:
        raise FormRefused(
            i18n.N_("the form could not be read: {detail}"), "bad_form", {"detail": exc.detail}
        ) from None


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
                        i18n.N_("your session has expired; log in again"),
                        "session_expired" if found else "not_logged_in",
                        401,
                    )
                return RedirectResponse(target, status_code=303)
            operator: Operator = found
            device_id = request.path_params.get("device_id")
            if device_id is not None and not valid_id(device_id):
                return problem(
                    request,
                    i18n.N_("not a device id: {rule}"),
                    "bad_device_id",
                    404,
                    operator,
                    rule=(ID_RULE, {}),
                )
            if not operator.can(role):
                return problem(
                    request,
                    i18n.N_("this needs the {role} role"),
                    "forbidden",
                    403,
                    operator,
                    role=(role, {}),  # the role's name in the reader's language
                )
            if request.method == "POST":
                try:
                    request.state.form = form = await read_form(request)
                except FormRefused as exc:
                    return refused(request, exc, 413, operator)
                supplied = request.headers.get("x-csrf-token") or str(form.get("csrf", ""))
                if not csrf_ok(operator, supplied):
                    return problem(
                        request,
                        i18n.N_(
                            "the form was out of date (security token mismatch); reload the"
                            " page and try again"
                        ),
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
