"""What a person does in the console, as Selenium steps (shared by the browser tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import PASSWORD

WAIT_S = 60  # an upper bound for slow shared machines, never a timing claim


def wait(driver: WebDriver, timeout: float = WAIT_S) -> WebDriverWait[Any]:
    return WebDriverWait(driver, timeout)


def login(driver: WebDriver, url: str, name: str, password: str = PASSWORD) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()


def logged_in(driver: WebDriver, url: str, name: str) -> None:
    login(driver, url, name)
    wait(driver).until(ec.presence_of_element_located((By.ID, "who")))


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def wait_text(driver: WebDriver, locator: tuple[str, str], text: str) -> None:
    wait(driver).until(ec.text_to_be_present_in_element(locator, text))


def texts(driver: WebDriver, css: str) -> list[str]:
    """The text of every match, read in one go: live tables are re-rendered by server-sent
    events, so an element found in one call may be gone by the next."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)"
    return list(driver.execute_script(script, css))


def fleet_health(driver: WebDriver, device_id: str) -> str:
    """The health the fleet page shows for a terminal ("" while it has no row)."""
    script = (
        'const tr = document.querySelector(`#fleet tr[data-device="${arguments[0]}"]`);'
        " return tr ? tr.dataset.health : ''"
    )
    return str(driver.execute_script(script, device_id))


def wait_fleet_health(driver: WebDriver, device_id: str, health: str) -> None:
    wait(driver).until(lambda d: fleet_health(d, device_id) == health)


def wait_fleet_up(driver: WebDriver, device_id: str) -> None:
    """Online and reporting: ok, or degraded (a sim camera on a busy runner runs slow)."""
    wait(driver).until(lambda d: fleet_health(d, device_id) in ("ok", "degraded"))


def fill_enrolment(
    driver: WebDriver, url: str, token: str, pin: str = "2468", consent_in: str | None = None
) -> None:
    """consent_in: the name of the language to switch the consent text to (as the link says)."""
    driver.get(f"{url}/enrol")
    if consent_in is not None:
        driver.find_element(By.LINK_TEXT, consent_in).click()
        wait(driver).until(
            lambda d: (
                d.find_element(By.CSS_SELECTOR, "#consent-languages strong").text == consent_in
            )
        )
    driver.find_element(By.ID, "consent").click()
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "pin").send_keys(pin)
    driver.find_element(By.ID, "pin-again").send_keys(pin)


def enrol_with_files(driver: WebDriver, url: str, token: str, photos: list[Path]) -> None:
    fill_enrolment(driver, url, token)
    driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in photos))
    driver.find_element(By.ID, "enrol").click()


def take_camera_photos(driver: WebDriver, count: int) -> None:
    """Click "Take a photo" until `count` are taken (a frame caught mid-blink is refused)."""
    refused: list[str] = []
    for _ in range(10 * count):
        driver.find_element(By.ID, "camera-take").click()
        wait(driver).until(lambda d: text_of(d, "take-result"))
        outcome = text_of(driver, "take-result")
        if outcome == f"photo {count} taken":
            return
        if not outcome.startswith("photo "):
            refused.append(outcome)
    raise AssertionError(f"camera photos refused: {refused}")


def check_blink(driver: WebDriver) -> str:
    driver.find_element(By.ID, "blink-start").click()
    wait(driver).until(lambda d: any(s in text_of(d, "blink") for s in ("seen,", "not seen")))
    return text_of(driver, "blink")


EVENT_CELLS = """return [...document.querySelectorAll('#events tbody tr')].map(tr =>
  [...tr.querySelectorAll('.coded')].map(s => [s.dataset.code,
    s.querySelector('code').textContent, s.firstChild.nodeType === 3 ? s.firstChild.data : '']))"""


def event_cells(browser: WebDriver) -> list[list[tuple[str, str]]]:
    """Per row of the events table, newest first: (code, its words) of each coded cell; the
    code shown beside the words must be the code."""
    rows = []
    for row in browser.execute_script(EVENT_CELLS):
        for code, shown_code, _words in row:
            assert shown_code == code, row
        rows.append([(code, words.strip()) for code, _shown, words in row])
    return rows
