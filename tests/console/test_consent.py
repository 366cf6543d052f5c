"""The consent text in the customer's language: a text for every language the console
speaks, the page's language by default, another on request; the record names the version,
the language and the SHA-256 of the text the customer read."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

with warnings.catch_warnings():  # starlette would like httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from backend.console import i18n
from backend.console.app import make_app
from backend.console.consent import (
    CONSENT_TEXTS,
    CONSENT_VERSION,
    consent_language,
    consent_sha256,
)
from tests.console.conftest import ConsoleRig, face_crop
from tests.console.test_bad_input import enrol, jpeg
from tests.console.test_hardening import login
from tests.console.test_i18n_pages import ZH, shown

pytestmark = pytest.mark.mqtt


def test_every_language_of_the_console_has_the_consent_text() -> None:
    assert set(CONSENT_TEXTS) == set(i18n.LANGUAGES)
    assert len({consent_sha256(text) for text in CONSENT_TEXTS.values()}) == len(CONSENT_TEXTS)
    assert consent_language("zh_CN", "en") == "zh_CN"
    assert consent_language("fr", "zh_CN") == "zh_CN"  # no French text: the page's
    assert consent_language(None, "fr") == "en"


@pytest.fixture
def client(rig: ConsoleRig) -> Iterator[TestClient]:
    with TestClient(make_app(rig.console), base_url="https://testserver", headers=ZH) as http:
        assert login(http, "olga").status_code == 200
        yield http


def test_the_page_language_by_default_and_another_on_request(client: TestClient) -> None:
    page = client.get("/enrol").text
    assert shown(page, "consent-text") == CONSENT_TEXTS["zh_CN"].strip()
    assert 'id="consent-language" value="zh_CN"' in page
    english = client.get("/enrol?consent=en").text
    assert shown(english, "consent-text") == CONSENT_TEXTS["en"].strip()
    assert 'id="consent-language" value="en"' in english
    unknown = client.get("/enrol?consent=xx").text
    assert 'id="consent-language" value="zh_CN"' in unknown


def test_the_record_names_the_text_the_customer_read(rig: ConsoleRig, client: TestClient) -> None:
    photo = [("a.jpg", jpeg(face_crop("hopper")), "image/jpeg")]
    response = enrol(client, photo, token="cust-zh", consent_language="zh_CN")
    assert response.status_code == 200, response.text
    (record,) = rig.console.consents("cust-zh")
    assert (record["version"], record["language"]) == (CONSENT_VERSION, "zh_CN")
    assert record["text_sha256"] == consent_sha256(CONSENT_TEXTS["zh_CN"])
    assert "简体中文" in client.get("/customers/cust-zh").text
    audit = [r for r in rig.console.store.audit_log() if r["target"] == "cust-zh"]
    assert audit[0]["action"] == "enrol" and "zh_CN" in str(audit[0])
