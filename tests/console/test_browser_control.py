"""Remote control of a running `blinkpay run --sim` from the device page: a config change
(checked, diff shown, signed, answered on config/state) and commands with their results
(a gate test's event in the events table, in words with its codes).

The terminal side of config/set, selftest, gate-test and reboot in `blinkpay run` is the
payment-integrity work (issue 10); until it is merged, the tests that need it skip and say
which piece is missing. resync is answered by every terminal already."""

from __future__ import annotations

import subprocess

import pytest
from selenium.webdriver.common.by import By

from tests.console.browser_steps import (
    event_cells,
    logged_in,
    text_of,
    wait,
    wait_fleet_up,
    wait_text,
)
from tests.console.conftest import ConsoleRig

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]

DEVICE = "gate-run-1"
RESTART_EXIT = 75  # a requested restart (docs/operations.md)
NOT_SUPPORTED = "is not supported on this terminal"


@pytest.fixture(scope="module")
def _terminal_process(rig: ConsoleRig) -> dict[str, subprocess.Popen[bytes]]:
    return {"process": rig.start_terminal("run", rig.terminal_config(DEVICE))}


@pytest.fixture
def running_terminal(rig: ConsoleRig, _terminal_process: dict[str, subprocess.Popen[bytes]]) -> str:
    """The terminal process, started again when a test ended it (the reboot command does:
    under --sim it exits for systemd to restart it, and no systemd runs here)."""
    if _terminal_process["process"].poll() is not None:
        _terminal_process["process"] = rig.start_terminal("run", rig.terminal_config(DEVICE))
    return DEVICE


def _device_page(rig: ConsoleRig, browser) -> None:
    logged_in(browser, rig.url, "ada")
    browser.get(rig.url)
    wait_fleet_up(browser, DEVICE)
    browser.get(f"{rig.url}/devices/{DEVICE}")


def _newest(browser) -> tuple[str, str, str]:
    """The newest command row (newest first): request id, status, text."""
    script = (
        "const tr = document.querySelector('#results tbody tr');"
        " return tr ? [tr.dataset.request, tr.dataset.status, tr.innerText] : ['', '', '']"
    )
    request, status, text = browser.execute_script(script)
    return str(request), str(status), str(text)


def _run_command(rig: ConsoleRig, browser, name: str) -> str:
    """Click a command; the newest row once it has its result (done or failed)."""
    _device_page(rig, browser)
    before = _newest(browser)[0]
    browser.find_element(By.ID, f"cmd-{name}").click()
    wait(browser).until(
        lambda d: _newest(d)[0] != before and _newest(d)[1] in ("done", "failed", "timed_out")
    )
    return _newest(browser)[2]


def test_resync_command_shows_its_result(rig: ConsoleRig, browser, running_terminal) -> None:
    row = _run_command(rig, browser, "resync")
    assert "done" in row and "ada" in row, row


@pytest.mark.parametrize("name", ["selftest", "gate-test", "reboot"])
def test_command_shows_its_result(
    rig: ConsoleRig,
    browser,
    running_terminal,
    _terminal_process: dict[str, subprocess.Popen[bytes]],
    name: str,
) -> None:
    row = _run_command(rig, browser, name)
    assert name in row and NOT_SUPPORTED not in row, row
    if name == "gate-test":  # the terminal's event, in words with its codes beside them
        pulse = [("gate_test", "Gate test"), ("pulsed", "Gate relay pulsed")]
        pulse.append(("remote", "Sent from the console"))
        wait(browser).until(lambda d: pulse in event_cells(d))
    if name == "reboot":  # simulated: the terminal exits for systemd to start it again
        assert _terminal_process["process"].wait(30) == RESTART_EXIT


def test_config_change_applied_on_a_running_terminal(
    rig: ConsoleRig,
    browser,
    running_terminal,
    _terminal_process: dict[str, subprocess.Popen[bytes]],
) -> None:
    _device_page(rig, browser)
    browser.find_element(By.ID, "config-text").send_keys("[payment]\nfare = 300\n")
    browser.find_element(By.ID, "config-preview").click()
    wait_text(browser, (By.ID, "diff"), "payment.fare")
    assert "250" in text_of(browser, "diff") and "300" in text_of(browser, "diff")
    browser.find_element(By.ID, "config-send").click()
    wait(browser).until(
        lambda d: any(s in text_of(d, "config-state") for s in ("applied", "refused"))
    )
    state = text_of(browser, "config-state")
    assert "applied" in state, state
    # a fare is applied by a clean restart at idle (exit 75; systemd starts it again)
    process = _terminal_process["process"]
    assert process.wait(30) == RESTART_EXIT


def test_an_invalid_config_is_refused_before_it_is_sent(
    rig: ConsoleRig, browser, running_terminal
) -> None:
    _device_page(rig, browser)
    browser.find_element(By.ID, "config-text").send_keys("[payment]\nfare = -5\n")
    browser.find_element(By.ID, "config-preview").click()
    wait_text(browser, (By.ID, "message"), "fare")
    assert not browser.find_elements(By.ID, "config-send")


def test_a_viewer_cannot_reboot(rig: ConsoleRig, browser, running_terminal) -> None:
    logged_in(browser, rig.url, "vic")
    browser.get(f"{rig.url}/devices/{DEVICE}")
    wait(browser).until(lambda d: d.find_elements(By.ID, "config-state"))
    assert not browser.find_elements(By.ID, "cmd-reboot")
    assert not browser.find_elements(By.ID, "config-text")
