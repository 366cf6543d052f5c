"""The screenshots of docs/console.md, taken in headless chromium on the test rig:
`python -m tests.console.screenshots docs/img` (needs mosquitto, chromium, chromedriver)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By

from tests.console import conftest as c
from tests.console.browser_steps import (
    check_blink,
    enrol_with_files,
    fill_enrolment,
    logged_in,
    take_camera_photos,
    texts,
    wait,
    wait_fleet_up,
    wait_text,
)
from tests.console.fake_terminal import fault_status


def points(rig: c.ConsoleRig, device_id: str) -> list[dict[str, Any]]:
    now = time.time()
    return list(rig.console.history.series(device_id, now - 3600, now, now)["points"])


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    clip_dir = Path(tempfile.mkdtemp(prefix="blinkpay-shots-"))
    clip = c.write_y4m(clip_dir / "collins.y4m", c.blinking(c.face_crop("collins")))
    with c.open_rig() as rig, c.open_browser(clip) as browser:
        shots(rig, browser, clip_dir, out)
    shutil.rmtree(clip_dir, ignore_errors=True)
    return 0


def shots(rig: c.ConsoleRig, browser: Any, clip_dir: Path, out: Path) -> None:
    for name, command in (("gate-01", "run"), ("gate-02", "net"), ("kiosk-07", "net")):
        rig.start_terminal(command, rig.terminal_config(name))
    hopper = c.write_photo(clip_dir / "hopper.jpg", c.face_crop("hopper"))
    logged_in(browser, rig.url, "ada")
    enrol_with_files(browser, rig.url, "cust-0001", [hopper])
    wait_text(browser, (By.ID, "enrolled"), "enrolled")
    browser.get(rig.url)
    for name in ("gate-01", "gate-02", "kiosk-07"):
        wait_fleet_up(browser, name)
    fault_status(rig, "gate-03", "ledger", "3 committed ledger rows are missing")
    fps = '#fleet tr[data-device="gate-01"] td[data-label="FPS"]'
    wait(browser).until(lambda d: texts(d, fps) and texts(d, fps)[0] != "-")
    browser.save_screenshot(str(out / "console-fleet.png"))
    browser.set_window_size(390, 1000)  # a phone: rows become cards
    browser.get(rig.url)
    wait(browser).until(lambda d: texts(d, fps) and texts(d, fps)[0] != "-")
    browser.save_screenshot(str(out / "console-fleet-phone.png"))
    browser.set_window_size(1400, 1000)

    # a few telemetry points for the charts
    wait(browser).until(lambda d: len(points(rig, "gate-01")) > 8)
    browser.get(f"{rig.url}/devices/gate-01")
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "figure.chart")) >= 6)
    browser.find_element(By.ID, "cmd-resync").click()
    wait(browser).until(lambda d: texts(d, "#results tbody tr"))
    wait(browser).until(lambda d: "done" in texts(d, "#results tbody tr")[0])
    caption = "#chart-fps figcaption"
    wait(browser).until(lambda d: texts(d, caption) and "points from" in texts(d, caption)[0])
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(out / "console-device.png"))

    browser.get(f"{rig.url}/alerts")
    browser.save_screenshot(str(out / "console-alerts.png"))

    fill_enrolment(browser, rig.url, "cust-0002")
    browser.find_element(By.ID, "camera-start").click()
    wait_text(browser, (By.ID, "quality"), "good: one face")
    take_camera_photos(browser, 2)
    check_blink(browser)
    browser.execute_script("document.getElementById('video').scrollIntoView()")
    browser.save_screenshot(str(out / "console-enrol.png"))


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")))
