"""Enrolment in headless chromium: by the fake camera (a clip of a public-domain demo face)
with consent; two people's photos and an enrolled face refused; erasure reaching a running
terminal (`blinkpay net`), acknowledged on the customer's page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from backend.console.consent import CONSENT_TEXTS, consent_sha256
from tests.console.browser_steps import (
    check_blink,
    enrol_with_files,
    fill_enrolment,
    logged_in,
    take_camera_photos,
    text_of,
    texts,
    wait,
    wait_fleet_up,
    wait_text,
)
from tests.console.conftest import ConsoleRig, face_crop, write_photo

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("photos")
    yield {
        "collins": write_photo(folder / "collins.jpg", face_crop("collins")),
        "hopper": write_photo(folder / "hopper.png", face_crop("hopper")),
        "text": _text_file(folder / "notes.jpg"),
    }


def _text_file(path: Path) -> Path:
    path.write_text("not a photo")
    return path


def _accounts(rig: ConsoleRig) -> list[str]:
    return [r["token"] for r in rig.console.customers()]


def _camera_photos(rig: ConsoleRig, browser, token: str, consent_in: str | None = None) -> None:
    logged_in(browser, rig.url, "olga")
    fill_enrolment(browser, rig.url, token, consent_in=consent_in)
    browser.find_element(By.ID, "camera-start").click()
    wait_text(browser, (By.ID, "quality"), "good: one face")
    take_camera_photos(browser, 3)


def test_camera_photos_without_a_blink_are_refused(rig: ConsoleRig, browser) -> None:
    _camera_photos(rig, browser, "cust-still")
    browser.find_element(By.ID, "enrol").click()
    wait_text(browser, (By.ID, "message"), "camera photos need a blink")
    assert "cust-still" not in _accounts(rig)


def test_a_session_that_ended_shows_on_the_camera_lines(rig: ConsoleRig, browser) -> None:
    """The quality and blink checks answer with the console's login problem page (401, HTML)
    once the session is gone: the page says so instead of keeping its last line."""
    _camera_photos(rig, browser, "cust-gone")
    browser.delete_all_cookies()  # the session ends (logout elsewhere, expiry)
    browser.find_element(By.ID, "camera-take").click()
    ended = "Not checked: the console did not answer (401): reload the page or log in again"
    wait_text(browser, (By.ID, "take-result"), ended)
    wait_text(browser, (By.ID, "quality"), ended)  # the live check every 1.5 s
    browser.find_element(By.ID, "blink-start").click()
    wait_text(browser, (By.ID, "blink"), ended)
    assert browser.find_element(By.ID, "blink-start").is_enabled()
    assert "cust-gone" not in _accounts(rig)


def test_enrolment_by_camera_with_consent_and_a_blink(rig: ConsoleRig, browser) -> None:
    """The operator's page is in English; the customer reads the consent in Chinese."""
    _camera_photos(rig, browser, "cust-collins", consent_in="简体中文")
    shown = text_of(browser, "consent-text")
    assert shown.startswith("在 blinkpay 终端刷脸支付") and "参与完全自愿" in shown
    assert browser.find_element(By.ID, "consent-text").get_attribute("lang") == "zh-CN"
    assert text_of(browser, "enrol") == "Check and enrol"  # the page itself stays English
    assert "Blink: seen" in check_blink(browser)
    browser.find_element(By.ID, "enrol").click()
    wait_text(browser, (By.ID, "enrolled"), "cust-collins is enrolled")
    assert "no other customer's face template" in text_of(browser, "nearest")
    gallery = text_of(browser, "gallery")  # counted after this enrolment: it is there
    assert f"{len(_accounts(rig))} accounts" in gallery
    consents = rig.console.consents("cust-collins")
    assert [(c["version"], c["language"]) for c in consents] == [("2026-12-v2", "zh_CN")]
    assert consents[0]["text_sha256"] == consent_sha256(CONSENT_TEXTS["zh_CN"])
    browser.get(f"{rig.url}/customers/cust-collins")
    assert "简体中文" in text_of(browser, "consents")
    account = rig.console.customer("cust-collins")
    assert account is not None and account["has_pin"] and account["status"] == "active"


def test_enrolment_without_consent_is_refused(rig: ConsoleRig, browser, photos) -> None:
    logged_in(browser, rig.url, "olga")
    fill_enrolment(browser, rig.url, "cust-noconsent")
    browser.find_element(By.ID, "consent").click()  # unticked again
    browser.find_element(By.ID, "files").send_keys(str(photos["hopper"]))
    browser.find_element(By.ID, "enrol").click()
    wait_text(browser, (By.ID, "message"), "consent to this text is required")
    assert "cust-noconsent" not in _accounts(rig)


def test_two_people_are_refused(rig: ConsoleRig, browser, photos) -> None:
    logged_in(browser, rig.url, "olga")
    enrol_with_files(browser, rig.url, "cust-mixed", [photos["collins"], photos["hopper"]])
    wait_text(browser, (By.ID, "message"), "not all of one person")
    assert "cust-mixed" not in _accounts(rig)
    assert not rig.console.consents("cust-mixed")  # nothing half-enrolled
    assert rig.console.refusals.snapshot()["not_one_person"] == 1


def test_a_face_enrolled_under_another_account_is_refused(rig: ConsoleRig, browser, photos) -> None:
    logged_in(browser, rig.url, "olga")
    enrol_with_files(browser, rig.url, "cust-again", [photos["collins"]])
    wait_text(browser, (By.ID, "message"), "already enrolled as cust-collins")
    assert "cust-collins" in text_of(browser, "nearest")  # shown to the operator
    assert "cust-again" not in _accounts(rig)


def test_a_file_that_is_not_an_image_is_refused(rig: ConsoleRig, browser, photos) -> None:
    logged_in(browser, rig.url, "olga")
    enrol_with_files(browser, rig.url, "cust-text", [photos["text"]])
    wait_text(browser, (By.ID, "message"), "not a JPEG, PNG or WebP image")


def test_erasure_reaches_a_running_terminal(rig: ConsoleRig, browser, photos) -> None:
    rig.start_terminal("net", rig.terminal_config("gate-erase"))
    logged_in(browser, rig.url, "ada")
    browser.get(rig.url)
    wait_fleet_up(browser, "gate-erase")
    enrol_with_files(browser, rig.url, "cust-hopper", [photos["hopper"]])
    wait_text(browser, (By.ID, "enrolled"), "cust-hopper is enrolled")

    browser.get(f"{rig.url}/customers/cust-hopper")
    browser.find_element(By.ID, "erase-confirm").send_keys("cust-hopper")
    browser.find_element(By.ID, "erase").click()
    wait_text(browser, (By.ID, "status"), "erased")

    def acknowledged(driver) -> bool:
        driver.refresh()
        return any("gate-erase" in row for row in texts(driver, "#erasure-acks tr.acked"))

    wait(browser).until(acknowledged)
    consent = rig.console.consents("cust-hopper")[0]
    assert consent["withdrawn_at"] is not None
    assert rig.console.customer("cust-hopper") is None
