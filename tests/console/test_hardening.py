"""The console under attack (issue 19): an image bomb refused from its header, the blink
endpoint's budget, scrypt off the event loop, X-Forwarded-For believed only from a trusted
proxy, an event stream that ends with its session, operators disabled/demoted/reset and
their sessions ended (audited), safe download names, a device id checked in the path."""

from __future__ import annotations

import asyncio
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

with warnings.catch_warnings():  # starlette would like httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from backend.console import auth as auth_module
from backend.console.app import ConsoleServer, make_app
from backend.console.blink import BlinkBudget
from backend.console.enrolment import EnrolRefused
from backend.console.images import decode_photo
from backend.console.routes_customers import attachment
from tests.conftest import free_port
from tests.console.conftest import PASSWORD, ConsoleRig

pytestmark = pytest.mark.mqtt

WAIT_S = 20.0


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A small PNG whose header claims width x height RGB pixels (1.2 GB decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 16, 9)  # the first rows only
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def login(http: TestClient | httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    page = http.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    return http.post("/login", data={"name": name, "password": password, "csrf": token[1]})


def csrf_of(http: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', http.get("/operators").text)
    assert match, "no operators page"
    return match.group(1)


@pytest.fixture
def admin(rig: ConsoleRig) -> Iterator[TestClient]:
    with TestClient(make_app(rig.console), base_url="https://testserver") as http:
        assert login(http, "ada").status_code == 200
        yield http


# -- images ------------------------------------------------------------------------------


def test_an_image_bomb_is_refused_from_its_header(
    rig: ConsoleRig, admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = png_bomb()
    assert len(bomb) < 64 * 1024

    def no_decoding(*_a: object) -> None:
        raise AssertionError("decoded a file whose header is already too large")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(EnrolRefused) as refused:
        decode_photo(bomb)
    assert refused.value.reason == "oversized_upload" and "too large" in str(refused.value)
    before = rig.console.refusals.snapshot().get("oversized_upload", 0)
    token = re.search(r'name="csrf" (?:id="csrf" )?value="([^"]+)"', admin.get("/enrol").text)
    assert token
    answer = admin.post(
        "/api/quality",
        files={"photo": ("bomb.png", bomb, "image/png")},
        headers={"X-CSRF-Token": token[1]},
    )
    assert answer.status_code == 400 and answer.json()["reason"] == "oversized_upload"
    assert rig.console.refusals.snapshot()["oversized_upload"] == before + 1


def test_a_blink_frame_is_scaled_down_as_soon_as_it_is_decoded() -> None:
    frame = cv2.imencode(".jpg", np.full((960, 1280, 3), 90, np.uint8))[1].tobytes()
    assert decode_photo(frame, longest_side=640).shape == (480, 640, 3)


def test_the_blink_endpoint_has_a_budget(rig: ConsoleRig, admin: TestClient) -> None:
    token = re.search(r'name="csrf" (?:id="csrf" )?value="([^"]+)"', admin.get("/enrol").text)
    assert token
    headers = {"X-CSRF-Token": token[1]}
    big = b"\xff\xd8\xff" + bytes(600 * 1024)  # over the 512 KB a blink frame may have
    files = [("frame", (f"{i}.jpg", big, "image/jpeg")) for i in range(60)]
    data = {"t": [str(i * 66) for i in range(60)]}
    whole = admin.post("/api/blink", files=files, data=data, headers=headers)
    assert whole.status_code == 413  # 36 MB: more than any form of the console
    some = {"t": data["t"][:20]}
    oversized = admin.post("/api/blink", files=files[:20], data=some, headers=headers)
    assert oversized.status_code == 400 and oversized.json()["reason"] == "oversized_upload"

    saved = rig.console.blink_budget
    rig.console.blink_budget = BlinkBudget(at_once=0)  # every worker busy
    try:
        busy = admin.post("/api/blink", files=files[:5], data={"t": data["t"][:5]}, headers=headers)
    finally:
        rig.console.blink_budget = saved
    assert busy.status_code == 429 and busy.json()["reason"] == "blink_busy"

    budget = BlinkBudget(at_once=2, per_minute=3)
    assert budget.take("olga") is None and budget.take("olga") is None
    assert budget.take("ada") == "blink_busy"  # two bursts are being measured
    budget.give_back()
    assert budget.take("olga") is None
    budget.give_back()
    budget.give_back()
    assert budget.take("olga") == "blink_rate_limited"  # a fourth in the same minute
    assert budget.take("ada") is None  # per operator


# -- passwords, proxies, sessions ----------------------------------------------------------


def test_password_hashing_runs_off_the_event_loop(
    rig: ConsoleRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []
    real = auth_module.hash_password

    def recording(password: str, salt: bytes) -> bytes:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(password, salt)

    monkeypatch.setattr(auth_module, "hash_password", recording)
    with TestClient(make_app(rig.console), base_url="https://testserver") as http:
        assert login(http, "olga", "a wrong password").status_code == 401
        assert login(http, "olga").status_code == 200
    assert on_loop == [False, False]


def _audited_client(rig: ConsoleRig, name: str) -> str:
    rows = [r for r in rig.console.store.audit_log() if r["target"] == name]
    return str(rows[0]["client"])


def _login_over_http(base: str, name: str, forwarded: str) -> int:
    with httpx.Client(base_url=base, timeout=WAIT_S) as http:
        page = http.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        response = http.post(
            "/login",
            data={"name": name, "password": "a wrong password", "csrf": token[1]},
            headers={"X-Forwarded-For": forwarded, "Cookie": f"blinkpay_login={token[1]}"},
        )
        return response.status_code


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(rig: ConsoleRig) -> None:
    # the rig's server trusts no proxy: the header is ignored, the peer address counts
    assert _login_over_http(rig.url, "nobody-a", "203.0.113.7") == 401
    assert _audited_client(rig, "nobody-a") == "127.0.0.1"
    behind = ConsoleServer(rig.console, "127.0.0.1", free_port(), ["127.0.0.1"]).start()
    try:
        assert _login_over_http(behind.url, "nobody-b", "203.0.113.7") == 401
        assert _audited_client(rig, "nobody-b") == "203.0.113.7"
    finally:
        behind.stop()


def test_an_event_stream_ends_when_its_session_ends(rig: ConsoleRig) -> None:
    with httpx.Client(base_url=rig.url, timeout=WAIT_S) as http:
        page = http.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        answer = http.post(
            "/login",
            data={"name": "vic", "password": PASSWORD, "csrf": token[1]},
            headers={"Cookie": f"blinkpay_login={token[1]}"},
        )
        session = answer.cookies.get("blinkpay_console")
        assert answer.status_code == 303 and session
        cookie = {"Cookie": f"blinkpay_console={session}"}
        lines: list[str] = []
        first, ended = threading.Event(), threading.Event()

        def follow() -> None:
            with http.stream("GET", "/events/fleet", headers=cookie) as stream:
                for line in stream.iter_lines():
                    lines.append(line)
                    if line.startswith("data:"):
                        first.set()
            ended.set()

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert first.wait(WAIT_S), "the stream sent nothing"
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/", headers=cookie).text)
        assert csrf
        out = http.post("/logout", data={"csrf": csrf[1]}, headers=cookie)
        assert out.status_code == 303
        assert ended.wait(WAIT_S), "the stream outlived the logout"
        assert "event: session-ended" in lines


# -- operators ------------------------------------------------------------------------------


def test_operators_are_disabled_demoted_reset_and_logged_out_from_the_console(
    rig: ConsoleRig, admin: TestClient
) -> None:
    rig.console.auth.add_operator("tess", "operator", PASSWORD)
    with TestClient(make_app(rig.console), base_url="https://testserver") as tess:
        assert login(tess, "tess").status_code == 200
        assert tess.get("/enrol").status_code == 200

        def act(action: str, **form: str) -> int:
            data = {"csrf": csrf_of(admin), **form}
            return admin.post(f"/operators/tess/{action}", data=data).status_code

        assert act("role", role="viewer") == 200  # the redirect followed to /operators
        assert "/login" in str(tess.get("/enrol").url)  # demoted: the session ended
        assert login(tess, "tess").status_code == 200
        assert tess.get("/enrol").status_code == 403  # a viewer now

        assert act("disable") == 200
        assert "/login" in str(tess.get("/").url)
        assert login(tess, "tess").status_code == 401  # disabled: no login
        assert act("enable") == 200
        assert login(tess, "tess").status_code == 200

        assert act("password", password="a brand new password") == 200
        assert "/login" in str(tess.get("/").url)
        assert login(tess, "tess").status_code == 401
        assert login(tess, "tess", "a brand new password").status_code == 200

        assert act("logout") == 200
        assert "/login" in str(tess.get("/").url)

    assert act("password", password="short") == 400
    actions = [r["action"] for r in rig.console.store.audit_log() if r["target"] == "tess"]
    for action in ("operator_role", "operator_disable", "operator_enable", "operator_password"):
        assert action in actions
    # the only admin cannot demote or disable themselves: nobody could undo it
    last = admin.post("/operators/ada/role", data={"csrf": csrf_of(admin), "role": "viewer"})
    assert last.status_code == 400 and "last enabled admin" in last.text


def test_operators_are_managed_from_the_command_line(
    rig: ConsoleRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import io
    import json
    import sys

    from backend.cli import main

    toml = tmp_path / "host.toml"
    toml.write_text(f'db_path = "{rig.config.db_path}"\n')
    rig.console.auth.add_operator("cleo", "operator", PASSWORD)
    argv = ["--config", str(toml)]

    def run(*args: str) -> object:
        assert main(["operator", *args, *argv]) == 0
        return json.loads(capsys.readouterr().out)

    assert run("role", "cleo", "admin")["role"] == "admin"
    assert run("disable", "cleo")["action"] == "disable"
    assert {o["name"]: o["disabled"] for o in run("list")}["cleo"] is True
    run("enable", "cleo")
    monkeypatch.setattr(sys, "stdin", io.StringIO("another long password\n"))
    run("reset-password", "cleo")
    assert rig.console.auth.login("cleo", "another long password", "test")
    assert run("logout", "cleo")["sessions_ended"] == 1
    assert main(["operator", "disable", "nobody-here", *argv]) == 1
    assert "no operator nobody-here" in capsys.readouterr().err
    cli = [r["action"] for r in rig.console.store.audit_log() if r["target"] == "cleo"]
    assert {"operator_role", "operator_disable", "operator_reset_password"} <= set(cli)


# -- names in headers and paths --------------------------------------------------------------


def test_download_names_cannot_break_the_header() -> None:
    header = attachment('a"; filename=evil.sh\r\nX: y.json')
    fallback = re.search(r'filename="([^"]*)"', header)
    assert fallback and re.fullmatch(r"[A-Za-z0-9._-]+", fallback[1])
    assert "\r" not in header and "\n" not in header and header.count('"') == 2
    assert header.endswith("filename*=UTF-8''a%22%3B%20filename%3Devil.sh%0D%0AX%3A%20y.json")


@pytest.mark.parametrize("bad", ["%2B", "%23", "g" * 80, "gate.x", "-gate"])
def test_a_device_id_in_the_path_is_checked(rig: ConsoleRig, admin: TestClient, bad: str) -> None:
    for path in (f"/devices/{bad}", f"/events/devices/{bad}"):
        page = admin.get(path)
        assert page.status_code == 404 and "not a device id" in page.text
    token = csrf_of(admin)
    sent = admin.post(f"/devices/{bad}/cmd/reboot", data={"csrf": token})
    assert sent.status_code == 404 and "not a device id" in sent.text
    # a slash never reaches a handler: no route has one in a device id
    assert admin.get("/devices/gate%2Fx").status_code == 404


def test_an_export_named_after_a_hostile_token_keeps_its_header(admin: TestClient) -> None:
    answer = admin.get("/customers/a%22%3B%20filename%3Devil.sh/export")
    assert answer.status_code == 200
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="a___filename_evil.sh.json";')
    assert disposition.count('"') == 2
