"""Bad input over plain HTTP: each refusal is a clear message and a counted reason, and
nothing is half-enrolled."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

with warnings.catch_warnings():  # starlette would like httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from backend.console.app import make_app
from backend.console.images import MAX_PHOTO_BYTES
from tests.console.conftest import PASSWORD, ConsoleRig, face_crop

pytestmark = pytest.mark.mqtt


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture(scope="module")
def client(rig: ConsoleRig) -> Iterator[TestClient]:
    # https base: the session cookie is Secure
    with TestClient(make_app(rig.console), base_url="https://testserver") as http:
        token = login_token(http)
        response = http.post("/login", data={"name": "olga", "password": PASSWORD, "csrf": token})
        assert response.status_code == 200, response.text
        yield http


def login_token(http: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
    assert match
    return match.group(1)


def csrf(client: TestClient) -> str:
    match = re.search(r'name="csrf" (?:id="csrf" )?value="([^"]+)"', client.get("/enrol").text)
    assert match
    return match.group(1)


def enrol(client: TestClient, photos: list[tuple[str, bytes, str]], **fields: str):
    data = {
        "csrf": csrf(client),
        "consent": "yes",
        "consent_version": "2026-12-v2",
        "consent_language": "en",
        "token": "cust-http",
        "pin": "1357",
        "pin_again": "1357",
        **fields,
    }
    files = [("photos", p) for p in photos]
    return client.post("/enrol", data=data, files=files)


def refused(rig: ConsoleRig, response, text: str, reason: str) -> None:
    assert response.status_code == 400, response.text
    assert text in response.text
    assert rig.console.refusals.snapshot().get(reason, 0) >= 1
    assert rig.console.customer("cust-http") is None
    assert not rig.console.consents("cust-http")


def test_photo_problems_are_refused(rig: ConsoleRig, client: TestClient) -> None:
    collins, hopper = face_crop("collins"), face_crop("hopper")
    blank = np.full((480, 640, 3), 128, np.uint8)
    pair = np.concatenate([cv2.resize(collins, (320, 320)), cv2.resize(hopper, (320, 320))], 1)
    cases = [
        ([("a.jpg", jpeg(blank), "image/jpeg")], "no face found", "no_face"),
        ([("a.jpg", jpeg(pair), "image/jpeg")], "2 faces, one person only", "two_faces"),
        ([("a.gif", b"GIF89a....", "image/gif")], "not a JPEG, PNG or WebP", "not_an_image"),
        (
            [("a.jpg", b"\xff\xd8\xff" + bytes(MAX_PHOTO_BYTES), "image/jpeg")],
            "at most 4 MB",
            "oversized_upload",
        ),
        ([], "give 1 to 5 photos", "photo_count"),
        ([("a.jpg", jpeg(collins), "image/jpeg")] * 6, "give 1 to 5 photos", "photo_count"),
    ]
    for photos, text, reason in cases:
        refused(rig, enrol(client, photos), text, reason)


def test_field_problems_are_refused(rig: ConsoleRig, client: TestClient) -> None:
    photo = [("a.jpg", jpeg(face_crop("hopper")), "image/jpeg")]
    cases = [
        ({"token": "bad token!"}, "account token", "bad_token"),
        ({"consent": ""}, "consent to this text is required", "no_consent"),
        ({"consent_version": "2020-old"}, "consent to this text is required", "no_consent"),
        ({"consent_language": "fr"}, "consent to this text is required", "no_consent"),
        ({"consent_language": ""}, "consent to this text is required", "no_consent"),
        ({"pin": "12", "pin_again": "12"}, "4 to 12 digits", "bad_pin"),
        ({"pin_again": "9999"}, "the two PINs differ", "pin_mismatch"),
        ({"daily_limit": "-1"}, "daily limit: a whole number", "bad_amount"),
        ({"shard_id": "nowhere"}, "no site nowhere", "bad_site"),
    ]
    for fields, text, reason in cases:
        refused(rig, enrol(client, photo, **fields), text, reason)


def test_quality_feedback_and_csrf_on_scripts(rig: ConsoleRig, client: TestClient) -> None:
    photo = {"photo": ("f.jpg", jpeg(face_crop("collins")), "image/jpeg")}
    forged = client.post("/api/quality", files=photo, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403 and "security token mismatch" in forged.text
    good = client.post("/api/quality", files=photo, headers={"X-CSRF-Token": csrf(client)})
    assert good.json()["ok"] is True and good.json()["faces"] == 1
    assert "embedding" not in good.json()


def test_refusals_and_photo_problems_in_the_operators_language(
    rig: ConsoleRig, client: TestClient
) -> None:
    zh = {"Accept-Language": "zh-CN", "X-CSRF-Token": csrf(client)}
    blank = {"photo": ("b.jpg", jpeg(np.full((480, 640, 3), 128, np.uint8)), "image/jpeg")}
    answer = client.post("/api/quality", files=blank, headers=zh)
    assert answer.json()["ok"] is False and answer.json()["problems"] == ["未发现人脸"]
    text = client.post(
        "/api/quality", files={"photo": ("t.jpg", b"text", "image/jpeg")}, headers=zh
    )
    assert text.status_code == 400
    assert text.json()["problems"] == ["该文件不是 JPEG、PNG 或 WebP 图像"]
    still = [("frame", (f"{i}.jpg", jpeg(face_crop("collins")), "image/jpeg")) for i in range(8)]
    times = {"t": [str(i * 66) for i in range(8)]}
    blink = client.post("/api/blink", files=still, data=times, headers=zh).json()
    assert blink["live"] is False and blink["reason"] == "no_blink"
    assert blink["message"] == "眼睛一直睁着，未看到眨眼"
    page = enrol(client, [("a.jpg", jpeg(face_crop("hopper")), "image/jpeg")], pin_again="9")
    assert "the two PINs differ" in page.text
    client.cookies.set("blinkpay_lang", "zh_CN")  # the operator's setting
    try:
        page = enrol(client, [("a.jpg", blank["photo"][1], "image/jpeg")])
    finally:
        client.cookies.delete("blinkpay_lang")
    assert page.status_code == 400 and "第 1 张照片：未发现人脸" in page.text


def test_a_logged_out_post_is_refused(rig: ConsoleRig) -> None:
    with TestClient(make_app(rig.console), base_url="https://testserver") as anonymous:
        response = anonymous.post("/customers/anyone/erase", data={"confirm": "anyone"})
    assert response.status_code == 401


def test_a_login_without_its_form_token_is_refused(rig: ConsoleRig) -> None:
    with TestClient(make_app(rig.console), base_url="https://testserver") as http:
        bare = http.post("/login", data={"name": "olga", "password": PASSWORD})
        assert bare.status_code == 403 and "login form was out of date" in bare.text
        login_token(http)
        forged = http.post("/login", data={"name": "olga", "password": PASSWORD, "csrf": "x"})
        assert forged.status_code == 403
        token = login_token(http)  # every login form has a fresh token
        ok = http.post("/login", data={"name": "olga", "password": PASSWORD, "csrf": token})
        assert ok.status_code == 200 and "olga (operator)" in ok.text


def test_operator_add_from_the_command_line(rig: ConsoleRig, tmp_path) -> None:
    from backend.console.cli import add_operator

    assert add_operator(rig.config, "newbie", "viewer", "a long enough password") == {
        "operator": "newbie",
        "role": "viewer",
    }
    names = {o["name"]: o["role"] for o in rig.console.auth.operators()}
    assert names["newbie"] == "viewer"


def test_suspend_resume_export_and_erase_over_http(rig: ConsoleRig, client: TestClient) -> None:
    photo = [("a.jpg", jpeg(face_crop("hopper")), "image/jpeg")]
    response = enrol(client, photo, token="cust-life")
    assert response.status_code == 200 and "cust-life</strong> is enrolled" in response.text
    token = csrf(client)
    for action, status in (("suspend", "suspended"), ("resume", "active")):
        page = client.post(f"/customers/cust-life/{action}", data={"csrf": token})
        assert f'<strong id="status">{status}</strong>' in page.text
    data = client.get("/customers/cust-life/export").json()
    assert data["account"]["status"] == "active" and data["template"]["dim"] == 192
    assert data["consents"][0]["version"] == "2026-12-v2"
    assert data["consents"][0]["language"] == "en"
    assert "pin_hash" not in data["account"] and "pin_salt" not in data["account"]
    unconfirmed = client.post("/customers/cust-life/erase", data={"csrf": token})
    assert unconfirmed.status_code == 400 and "type the account token" in unconfirmed.text
    erased = client.post("/customers/cust-life/erase", data={"csrf": token, "confirm": "cust-life"})
    assert '<p id="status">erased</p>' in erased.text
    actions = [r["action"] for r in rig.console.store.audit_log() if r["target"] == "cust-life"]
    assert actions[:5] == ["delete", "export", "reactivate", "suspend", "enrol"]
    # the photos never reached the database: only the 192 floats of the template
    files = list(rig.config.db_path.parent.glob(rig.config.db_path.name + "*"))  # and its WAL
    assert files and not [f for f in files if b"\xff\xd8\xff" in f.read_bytes()]
