"""Customers: enrolment with consent, live photo feedback, list and search, suspend, resume,
erase (consent withdrawal), and a copy of a customer's data."""

from __future__ import annotations

import asyncio
import functools
import math
import re
from typing import Any
from urllib.parse import quote

import numpy as np
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from backend.console.auth import Operator
from backend.console.blink import (
    BLINK_SIDE,
    MAX_FRAME_BYTES,
    MAX_FRAME_PIXELS,
    MAX_FRAMES,
    NOT_LIVE,
)
from backend.console.consent import CONSENT_TEXTS, CONSENT_VERSION, consent_language
from backend.console.enrolment import MAX_PHOTOS, NO_MODELS, PHOTO_COUNT, EnrolRefused
from backend.console.i18n import N_
from backend.console.images import decode_photo
from backend.console.lists import page_number, search
from backend.console.web import (
    client,
    console,
    form_of,
    language,
    page,
    problem,
    refused,
    render,
    translator,
)
from device.errors import BlinkpayError, TranslatableError

TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")  # the contract's Token
PIN = re.compile(r"^\d{4,12}$")
LIMITS = {  # field: (default, maximum) in minor units
    "balance": (10_000, 100_000_000),
    "daily_limit": (10_000, 100_000_000),
    "offline_allowance": (1_000, 100_000_000),
}
FIELDS = {  # the limits' names in a refusal
    "balance": N_("balance"),
    "daily_limit": N_("daily limit"),
    "offline_allowance": N_("offline allowance"),
}
OPS = {"suspend": "suspend", "resume": "reactivate", "erase": "delete"}
FAILED = N_("the enrolment failed: {error}")


@page("viewer")
async def customers(request: Request, operator: Operator) -> Response:
    q = request.query_params.get("q", "")[:128]
    number = page_number(request.query_params.get("page"))
    rows, more = search(console(request).store, "customers", q, number)
    return render(request, "customers.html", operator, rows=rows, q=q, page=number, more=more)


@page("viewer")
async def customer(request: Request, operator: Operator) -> Response:
    token = request.path_params["token"]
    c = console(request)
    account = c.customer(token)
    erasures = c.erasures(token)
    if account is None and not erasures:
        return problem(
            request, N_("no account {token}"), "unknown_account", 404, operator, token=token
        )
    return render(
        request,
        "customer.html",
        operator,
        token=token,
        account=account,
        consents=c.consents(token),
        erasures=erasures,
    )


@page("operator")
async def change(request: Request, operator: Operator) -> Response:
    token, action = request.path_params["token"], request.path_params["action"]
    if action not in OPS:
        return problem(
            request, N_("no action {action}"), "unknown_action", 404, operator, action=action
        )
    if action == "erase" and (await form_of(request)).get("confirm") != token:
        return problem(
            request,
            N_("type the account token to confirm the erasure"),
            "erase_unconfirmed",
            400,
            operator,
        )
    try:
        console(request).change(operator.name, token, OPS[action], client(request))
    except BlinkpayError as exc:
        return refused(request, exc, 400, operator, "change_refused")
    return RedirectResponse(f"/customers/{token}", status_code=303)


@page("operator")
async def export(request: Request, operator: Operator) -> Response:
    token = request.path_params["token"]
    data = console(request).export(operator.name, token, client(request))
    return JSONResponse(data, headers={"Content-Disposition": attachment(f"{token}.json")})


def attachment(filename: str) -> str:
    """A Content-Disposition a header cannot be broken out of: an ASCII fallback of safe
    characters only, and the name itself percent-encoded (RFC 6266 / RFC 5987)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:120] or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# -- enrolment -------------------------------------------------------------------------


def _enrol_page(
    request: Request,
    operator: Operator,
    status: int = 200,
    consent_wanted: str | None = None,
    **ctx: Any,
) -> Response:
    """The form; the consent text in the language asked for (the customer's, which may not
    be the operator's), else the page's."""
    shown = consent_language(consent_wanted, language(request))
    return render(
        request,
        "enrol.html",
        operator,
        status=status,
        consent_language=shown,
        consent_languages=list(CONSENT_TEXTS),
        consent_text=CONSENT_TEXTS[shown],
        consent_version=CONSENT_VERSION,
        sites=console(request).sites(),
        max_photos=MAX_PHOTOS,
        limits=LIMITS,
        gallery=console(request).store.one(
            "SELECT (SELECT COUNT(*) FROM accounts) AS accounts,"
            " (SELECT COUNT(*) FROM templates) AS templates"
        ),
        **ctx,
    )


@page("operator")
async def enrol_form(request: Request, operator: Operator) -> Response:
    wanted = request.query_params.get("consent")
    return _enrol_page(request, operator, consent_wanted=wanted, form={})


def _fields(form: FormData) -> tuple[str, str, str, dict[str, int]]:
    """Token, the consent text's language, PIN and limits, validated; EnrolRefused names
    the first bad field."""
    token = str(form.get("token", "")).strip()
    if not TOKEN.match(token):
        raise EnrolRefused(
            N_("the account token is 1-128 of letters, digits and . _ : -"), "bad_token"
        )
    agreed_in = str(form.get("consent_language", ""))
    if (
        form.get("consent") != "yes"
        or form.get("consent_version") != CONSENT_VERSION
        or agreed_in not in CONSENT_TEXTS
    ):
        raise EnrolRefused(N_("the customer's consent to this text is required"), "no_consent")
    pin = str(form.get("pin", ""))
    if not PIN.match(pin):
        raise EnrolRefused(N_("the PIN is 4 to 12 digits"), "bad_pin")
    if pin != str(form.get("pin_again", "")):
        raise EnrolRefused(N_("the two PINs differ"), "pin_mismatch")
    limits = {}
    for name, (default, maximum) in LIMITS.items():
        raw = str(form.get(name, "") or default).strip()
        if not raw.isdigit() or int(raw) > maximum:
            raise EnrolRefused(
                N_("{field}: a whole number 0-{most}"),
                "bad_amount",
                args={"field": (FIELDS[name], {}), "most": maximum},
            )
        limits[name] = int(raw)
    return token, agreed_in, pin, limits


def _blink_proof(request: Request, operator: Operator, form: FormData) -> np.ndarray | None:
    """Camera photos need the blink proof of this session (files: the operator vouches)."""
    if form.get("camera") != "1":
        return None
    live = console(request).blinks.take(operator.csrf, str(form.get("blink_proof", "")))
    if live is None:
        raise EnrolRefused(
            N_("camera photos need a blink: press 'Check a blink' and blink once"),
            "blink_required",
        )
    return live


async def _photos(form: FormData) -> list[bytes]:
    files = [f for f in form.getlist("photos") if isinstance(f, UploadFile) and f.filename]
    if not 1 <= len(files) <= MAX_PHOTOS:
        raise EnrolRefused(PHOTO_COUNT, "photo_count", args={"most": MAX_PHOTOS})
    return [await f.read() for f in files]


@page("operator")
async def enrol(request: Request, operator: Operator) -> Response:
    form = await form_of(request)
    c = console(request)
    _ = translator(request)
    shown = {k: str(form.get(k, "")) for k in ("token", "shard_id", *LIMITS)}
    consent_wanted = str(form.get("consent_language", "")) or None
    try:
        if c.enroller is None:
            raise EnrolRefused(NO_MODELS, "no_models")
        token, agreed_in, pin, limits = _fields(form)
        site = str(form.get("shard_id", "")) or None
        if site is not None and site not in c.sites():
            raise EnrolRefused(N_("no site {site}"), "bad_site", args={"site": site})
        live = _blink_proof(request, operator, form)
        blobs = await _photos(form)
        images = await asyncio.to_thread(_decode_all, blobs)
        del blobs
        checked = await asyncio.to_thread(c.enroller.check, images, token, live)
        del images  # the photos end here; only the template goes on
        # the PIN's scrypt and the database writes: on a worker thread, not the event loop
        delta = await asyncio.to_thread(
            functools.partial(
                c.enrol,
                operator.name,
                token,
                checked,
                pin=pin,
                limits=limits,
                client=client(request),
                shard_id=site,
                consent_language=agreed_in,
            )
        )
    except EnrolRefused as exc:
        c.refuse(exc.reason)
        return _enrol_page(
            request,
            operator,
            status=400,
            consent_wanted=consent_wanted,
            form=shown,
            message=exc.text(_),
            reason=exc.reason,
            nearest=exc.detail.get("nearest"),
        )
    except BlinkpayError as exc:  # the host's: a refusal translated, else after a lead-in
        c.refuse("enrol_failed")
        message = exc.text(_) if isinstance(exc, TranslatableError) else _(FAILED, error=str(exc))
        return _enrol_page(
            request,
            operator,
            status=400,
            consent_wanted=consent_wanted,
            form=shown,
            message=message,
            reason="enrol_failed",
        )
    return _enrol_page(
        request,
        operator,
        consent_wanted=consent_wanted,
        form={},
        enrolled=token,
        seq=delta["seq"],
        nearest=checked.nearest,
        pairwise=round(checked.pairwise_min, 3),
    )


@page("operator")
async def quality(request: Request, operator: Operator) -> Response:
    """Live feedback on one photo or camera frame (JSON); nothing is kept."""
    c = console(request)
    form = await form_of(request)
    photo = form.get("photo")
    _ = translator(request)
    try:
        if c.enroller is None:
            raise EnrolRefused(NO_MODELS, "no_models")
        if not isinstance(photo, UploadFile):
            raise EnrolRefused(N_("no photo"), "photo_count")
        data = await photo.read()
        enroller = c.enroller
        check = await asyncio.to_thread(lambda: enroller.check_photo(decode_photo(data)))
    except EnrolRefused as exc:
        c.refuse(exc.reason)
        return JSONResponse({"ok": False, "problems": [exc.text(_)], "reason": exc.reason}, 400)
    return JSONResponse(check.public(_))


def _decode_all(blobs: list[bytes]) -> list[np.ndarray]:
    return [decode_photo(blob) for blob in blobs]


def _measure_burst(enroller: Any, stamps: list[float], blobs: list[bytes]) -> Any:
    """Decode (header first, scaled down at once) and measure, on a worker thread."""
    burst = []
    for stamp, data in zip(stamps, blobs, strict=True):
        rgb = decode_photo(data, MAX_FRAME_BYTES, MAX_FRAME_PIXELS, longest_side=BLINK_SIDE)
        burst.append((stamp, rgb))
    blobs.clear()  # the encoded frames go as soon as they are decoded
    return enroller.blink(burst)


@page("operator")
async def blink(request: Request, operator: Operator) -> Response:
    """A burst of camera frames with their times (ms): did the face blink? (JSON)"""
    c = console(request)
    form = await form_of(request)
    frames = [f for f in form.getlist("frame") if isinstance(f, UploadFile)]
    times = form.getlist("t")
    _ = translator(request)
    refused = c.blink_budget.take(operator.name)
    if refused is not None:
        c.refuse(refused)
        message = _("too many blink checks at once; wait a moment and try again")
        return JSONResponse({"live": False, "reason": refused, "message": message}, 429)
    try:
        if c.enroller is None:
            raise EnrolRefused(NO_MODELS, "no_models")
        if not 5 <= len(frames) <= MAX_FRAMES or len(times) != len(frames):
            raise EnrolRefused(
                N_("send 5 to {most} frames with their times"),
                "bad_burst",
                args={"most": MAX_FRAMES},
            )
        stamps = [_stamp(t) for t in times]
        blobs = []
        for frame in frames:  # each refused by its size before the next is read
            if frame.size is not None and frame.size > MAX_FRAME_BYTES:
                raise EnrolRefused(N_("a blink frame may be at most 512 KB"), "oversized_upload")
            blobs.append(await frame.read(MAX_FRAME_BYTES + 1))
        check = await asyncio.to_thread(_measure_burst, c.enroller, stamps, blobs)
    except (EnrolRefused, ValueError) as exc:  # ValueError: a frame the pipeline cannot take
        reason = exc.reason if isinstance(exc, EnrolRefused) else "bad_burst"
        message = exc.text(_) if isinstance(exc, EnrolRefused) else str(exc)
        c.refuse(reason)
        return JSONResponse({"live": False, "reason": reason, "message": message}, 400)
    finally:
        c.blink_budget.give_back()
    result = check.result
    body = {"live": result.live, "reason": str(result.reason), "frames": result.frames}
    if result.live and check.embedding is not None:
        body["proof"] = c.blinks.issue(operator.csrf, check.embedding)
    else:
        c.refuse(f"blink_{result.reason}")
        body["live"] = False
        body["message"] = _(NOT_LIVE.get(result.reason, "{text}"), text=str(result.reason))
    return JSONResponse(body)


def _stamp(t: object) -> float:
    """A frame's time: milliseconds (a finite number) to seconds; EnrolRefused otherwise."""
    try:
        ms = float(str(t))
    except ValueError:
        ms = math.nan
    if not math.isfinite(ms):
        raise EnrolRefused(N_("frame times must be finite numbers of milliseconds"), "bad_burst")
    return ms / 1000.0


routes = [
    Route("/customers", customers, methods=["GET"]),
    Route("/customers/{token}", customer, methods=["GET"]),
    Route("/customers/{token}/export", export, methods=["GET"]),
    Route("/customers/{token}/{action}", change, methods=["POST"]),
    Route("/enrol", enrol_form, methods=["GET"]),
    Route("/enrol", enrol, methods=["POST"]),
    Route("/api/quality", quality, methods=["POST"]),
    Route("/api/blink", blink, methods=["POST"]),
]
