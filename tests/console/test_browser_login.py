"""Login, roles, expired sessions, CSRF and the login rate limit, in headless chromium."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.console.browser_steps import logged_in, login, text_of, wait, wait_text
from tests.console.conftest import ConsoleRig

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]


def test_wrong_password_is_refused_with_a_message(rig: ConsoleRig, browser) -> None:
    login(browser, rig.url, "ada", "not the password")
    wait_text(browser, (By.ID, "message"), "wrong name or password")
    assert rig.console.refusals.snapshot()["wrong_login"] >= 1


def test_roles_decide_what_an_operator_sees_and_may_do(rig: ConsoleRig, browser) -> None:
    logged_in(browser, rig.url, "vic")
    assert "viewer" in text_of(browser, "who")
    links = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")]
    assert "Enrol" not in links and "Operators" not in links
    browser.get(f"{rig.url}/enrol")
    wait_text(browser, (By.ID, "problem"), "needs the operator role")

    logged_in(browser, rig.url, "olga")
    browser.get(f"{rig.url}/enrol")
    wait(browser).until(lambda d: d.find_elements(By.ID, "consent-text"))
    browser.get(f"{rig.url}/operators")
    wait_text(browser, (By.ID, "problem"), "needs the admin role")

    logged_in(browser, rig.url, "ada")
    browser.get(f"{rig.url}/audit")
    wait_text(browser, (By.ID, "audit"), "login")


def test_a_stale_form_is_refused_by_its_csrf_token(rig: ConsoleRig, browser) -> None:
    logged_in(browser, rig.url, "ada")
    browser.get(f"{rig.url}/operators")
    browser.execute_script(
        "document.querySelector('#add-operator input[name=csrf]').value = 'forged'"
    )
    browser.find_element(By.CSS_SELECTOR, "#add-operator input[name=name]").send_keys("mallory")
    browser.find_element(By.CSS_SELECTOR, "#add-operator input[name=password]").send_keys("x" * 12)
    browser.find_element(By.CSS_SELECTOR, "#add-operator button").click()
    wait_text(browser, (By.ID, "problem"), "security token mismatch")
    assert not [o for o in rig.console.auth.operators() if o["name"] == "mallory"]


def test_an_expired_session_goes_back_to_the_login(rig: ConsoleRig, browser) -> None:
    logged_in(browser, rig.url, "olga")
    rig.console.auth.expire_all("olga")
    browser.get(f"{rig.url}/customers")
    wait_text(browser, (By.ID, "message"), "session expired")


def test_repeated_wrong_passwords_are_rate_limited(rig: ConsoleRig, browser) -> None:
    fresh = type(rig.console.auth.limiter)
    rig.console.auth.limiter = fresh()  # earlier tests' failures count from this client too
    try:
        for _ in range(rig.console.auth.limiter.attempts):
            login(browser, rig.url, "vic", "wrong password")
            wait_text(browser, (By.ID, "message"), "wrong name or password")
        login(browser, rig.url, "vic")  # the right password, too late
        wait_text(browser, (By.ID, "message"), "too many failed logins")
        assert rig.console.refusals.snapshot()["login_rate_limited"] == 1
    finally:
        rig.console.auth.limiter = fresh()  # later tests log in again


def test_an_admin_disables_demotes_and_reenables_an_operator(rig: ConsoleRig, browser) -> None:
    from backend.console.auth import AuthError
    from tests.console.conftest import PASSWORD

    rig.console.auth.add_operator("dora", "operator", PASSWORD)
    session = rig.console.auth.login("dora", PASSWORD, "test")
    logged_in(browser, rig.url, "ada")
    browser.get(f"{rig.url}/operators")
    browser.find_element(By.CSS_SELECTOR, "#op-dora form[action$='/disable'] button").click()
    wait_text(browser, (By.ID, "op-dora"), "disabled")
    assert rig.console.auth.session(session) is None  # her session ended at once
    with pytest.raises(AuthError):
        rig.console.auth.login("dora", PASSWORD, "test")
    role = browser.find_element(By.CSS_SELECTOR, "#op-dora select[name=role]")
    Select(role).select_by_visible_text("viewer")
    browser.find_element(By.CSS_SELECTOR, "#op-dora form[action$='/role'] button").click()
    wait_text(browser, (By.ID, "op-dora"), "viewer")
    browser.find_element(By.CSS_SELECTOR, "#op-dora form[action$='/enable'] button").click()
    wait_text(browser, (By.ID, "op-dora"), "enabled")
    assert rig.console.auth.login("dora", PASSWORD, "test")
    actions = [r["action"] for r in rig.console.store.audit_log() if r["target"] == "dora"]
    assert {"operator_disable", "operator_role", "operator_enable"} <= set(actions)


def test_a_live_page_goes_to_the_login_when_its_session_is_ended(rig: ConsoleRig, browser) -> None:
    logged_in(browser, rig.url, "vic")
    browser.get(f"{rig.url}/")
    wait_text(browser, (By.TAG_NAME, "body"), "live updates: on")
    rig.console.auth.end_sessions("vic")  # an admin ended them (CLI or /operators)
    wait(browser).until(lambda d: "/login" in d.current_url)
    wait_text(browser, (By.ID, "message"), "session expired")
