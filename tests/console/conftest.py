"""Fixtures for the console: a mosquitto on a free loopback port, host keys and config, the
console (and a serving host) in this process on a free loopback port, operators of every
role, terminal processes (`blinkpay net`, `blinkpay run --sim`) and headless chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from backend.config import HostConfig
from backend.console.app import ConsoleServer, load_pipeline
from backend.console.service import Console
from backend.host import PaymentHost
from device.provisioning import provision
from tests.conftest import Broker, free_port, mosquitto_available, start_broker

SHARD = "site-a"
PASSWORD = "correct horse battery"
ROLES = {"ada": "admin", "olga": "operator", "vic": "viewer"}


@dataclass
class ConsoleRig:
    workdir: Path
    broker: Broker
    config: HostConfig
    console: Console
    server: ConsoleServer
    host: PaymentHost
    terminals: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def terminal_config(self, device_id: str, **sections: dict[str, object]) -> Path:
        """Keys and a config for a terminal of the rig's shard, fast telemetry and will."""
        folder = self.workdir / device_id
        mqtt = {
            "url": self.broker.url,
            "backend_public_key_file": str(self.workdir / "keys" / "signing.pub.pem"),
            "shard_id": SHARD,
            "keepalive_s": 5,
            "telemetry_interval_s": 1.0,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        }
        base = {
            "device": {"id": device_id, "data_dir": str(folder / "data"), "log_format": "json"},
            "hardware": {"backend": "sim", "camera": {"source": "synthetic", "fps": 10.0}},
            "mqtt": mqtt,
        }
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        pin_key = bytes.fromhex((self.workdir / "keys" / "pin.key").read_text().strip())
        provisioned = provision(folder / "config.toml", base, pin_key=pin_key)
        self.host.register_device(
            device_id,
            provisioned.public_key_pem.encode(),
            provisioned.box_public_key_pem.encode(),  # the shard is sealed to this key
            SHARD,
        )
        return provisioned.config_path

    def start_terminal(self, command: str, config_path: Path) -> subprocess.Popen[bytes]:
        """`blinkpay net` or `blinkpay run --sim` as a process of its own."""
        args = [sys.executable, "-m", "device.cli", command]
        if command == "run":
            args.append("--sim")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINKPAY_", "NOTIFY_"))}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        process = subprocess.Popen(
            [*args, "--config", str(config_path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.terminals.append(process)
        return process

    def close(self) -> None:
        for process in self.terminals:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.server.stop()
        self.host.stop()
        self.console.stop()
        self.broker.stop()


def make_keys(folder: Path) -> None:
    from backend.cli import make_keys as host_keys

    folder.mkdir(parents=True)
    host_keys(folder)


@pytest.fixture(scope="module")
def rig() -> Iterator[ConsoleRig]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    with open_rig() as running:
        yield running


@contextmanager
def open_rig(
    console_settings: dict[str, Any] | None = None,
    console_via: Callable[[Broker], int] | None = None,
) -> Iterator[ConsoleRig]:
    """console_via: given the rig's broker, the loopback port the console (only) reaches it
    on instead (a test's proxy in front of the broker: the console's link can be cut)."""
    # Not under pytest's 0700 tree: mosquitto started as root drops to its own user.
    workdir = Path(tempfile.mkdtemp(prefix="blinkpay-console-"))
    os.chmod(workdir, 0o755)
    # An anonymous throw-away broker: these tests are about the console's pages; the site
    # broker's credentials and ACLs are tested in tests/security/test_broker_acl.py.
    broker = start_broker(workdir / "broker")
    make_keys(workdir / "keys")
    config = HostConfig(
        host_id="host-a",
        mqtt={
            "url": broker.url,
            "shard_id": SHARD,
            "keepalive_s": 5,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        },
        db_path=workdir / "host.db",
        signing_key_file=workdir / "keys" / "signing.pem",
        pin_key_file=workdir / "keys" / "pin.key",
        console=console_settings or {},
    )
    console_config = config
    if console_via is not None:
        url = f"mqtt://127.0.0.1:{console_via(broker)}"
        console_config = config.model_copy(
            update={"mqtt": config.mqtt.model_copy(update={"url": url})}
        )
    console = Console(console_config, load_pipeline(None)).start()
    host = PaymentHost(config).start()
    server = ConsoleServer(console, "127.0.0.1", free_port()).start()
    _wait_http(server.url)
    for name, role in ROLES.items():
        console.auth.add_operator(name, role, PASSWORD)
    running = ConsoleRig(workdir, broker, config, console, server, host)
    try:
        yield running
    finally:
        running.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_http(url: str) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the console did not answer on {url}")


# -- the demo's public-domain faces as photos and a camera clip ----------------------------


def face_crop(key: str) -> np.ndarray:
    """RGB, the portrait cropped around the face so the face fills a camera frame."""
    from device.demo.portraits import load_portrait

    rgb = load_portrait(key)
    return rgb[0:300, 100:400] if key == "collins" else rgb[50:450, 50:450]


def write_photo(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


BLINK_CLOSURES = (0.5, 0.95, 1.0, 1.0, 0.5)  # as the demo paints a blink, at 15 fps


def blinking(rgb: np.ndarray) -> list[np.ndarray]:
    """Two seconds at 15 fps: eyes open, a blink painted from the face mesh, open again."""
    from device.demo.portraits import close_eyes

    faces = load_pipeline(None).process(rgb, 0.0, track=False, embed=False)
    closing = [close_eyes(rgb, faces[0].landmarks, c) for c in BLINK_CLOSURES]
    return [rgb] * 10 + closing + [rgb] * 15


def write_y4m(path: Path, frames: list[np.ndarray]) -> Path:
    """A 640x480 15 fps YUV4MPEG2 clip of one face, for chromium's fake camera (it loops)."""
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n")
        for rgb in frames:
            canvas = np.full((480, 640, 3), 90, np.uint8)
            canvas[40:440, 120:520] = cv2.resize(rgb, (400, 400))
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def camera_clip() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="blinkpay-clip-"))
    try:
        yield write_y4m(folder / "collins.y4m", blinking(face_crop("collins")))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(camera_clip: Path) -> Iterator[object]:
    if chromium_paths() is None:
        pytest.skip(
            "chromium and chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    with open_browser(camera_clip) as driver:
        yield driver


@contextmanager
def open_browser(camera_clip: Path) -> Iterator[Any]:
    """Headless Debian chromium through the system chromedriver, with a fake camera that
    plays the clip of a demo face."""
    paths = chromium_paths()
    assert paths is not None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_clip}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
