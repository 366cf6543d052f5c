"""`blinkpay demo --console`: the console records the scenes, then serves the demo's host,
prints its address and a throw-away admin login, and shows the demo terminal in the fleet
with the day's approvals and refusals."""

from __future__ import annotations

import json
import re
import urllib.parse
from http.client import HTTPConnection

import pytest

from device.demo.console import DemoConsole
from device.demo.scenes import run_demo
from device.net.local_broker import mosquitto_binary

pytestmark = pytest.mark.mqtt


def test_demo_leaves_the_console_running(tmp_path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    lines: list[str] = []
    seen: dict[str, str] = {}

    def visit(url: str) -> None:
        login = re.search(r"log in as (\S+) / (\S+);", lines[-1])
        assert login and url in lines[-1]
        address = urllib.parse.urlsplit(url)
        http = HTTPConnection(address.hostname, address.port, timeout=30)
        http.request("GET", "/login")
        page = http.getresponse()
        token = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
        assert token
        form = urllib.parse.urlencode({"name": login[1], "password": login[2], "csrf": token[1]})
        # the cookies are Secure (browsers keep them on loopback http; http.cookiejar would not)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": page.getheader("set-cookie", "").split(";")[0],
        }
        http.request("POST", "/login", form, headers)
        answer = http.getresponse()
        answer.read()
        cookie = answer.getheader("set-cookie", "").split(";")[0]
        http.request("GET", "/", headers={"Cookie": cookie})
        seen["fleet"] = http.getresponse().read().decode()
        http.request("GET", "/api/fleet", headers={"Cookie": cookie})
        seen["api"] = http.getresponse().read().decode()
        http.request("GET", "/metrics")
        seen["metrics"] = http.getresponse().read().decode()

    report = run_demo(
        lines.append, workdir=tmp_path, console=DemoConsole(lines.append, visit, "127.0.0.1:0")
    )
    assert report.ok
    assert "demo (admin)" in seen["fleet"]
    assert 'blinkpay_terminal_up{device_id="demo-gate-01"} 1' in seen["metrics"]
    # the scenes' paid rides and the attacks turned away, as the fleet counts them today
    gate = next(t for t in json.loads(seen["api"])["terminals"] if t["device_id"] == "demo-gate-01")
    assert gate["today"]["approved"] >= 3, gate
    assert gate["today"]["refused"] >= 2, gate
