"""The field engineer's path, for real, as root on a throw-away machine: `install.sh`
(the non-dev install), `blinkpay provision` and `blinkpay selftest` as docs/operations.md
says, the terminal run as the service user against a broker and the reference host,
`online` on the retained status topic, one paid customer, then
`install.sh --uninstall [--purge]`.

Runs only as root with BLINKPAY_FIELD_TEST=1 (.ci/run sets it): it creates the blinkpay
user and writes /opt/blinkpay, /etc/blinkpay and /var/lib/blinkpay.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import mosquitto_available, start_broker

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install.sh"
BLINKPAY = "/usr/local/bin/blinkpay"
ETC, DATA, OPT = Path("/etc/blinkpay"), Path("/var/lib/blinkpay"), Path("/opt/blinkpay")
USER = "blinkpay"
DEVICE, SHARD, TOKEN, BALANCE = "field-gate", "field", "cust-field", 5000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("BLINKPAY_FIELD_TEST") != "1" or os.geteuid() != 0,
        reason="the field install test runs only as root with BLINKPAY_FIELD_TEST=1 "
        "(it installs into /opt, /etc and /var/lib and creates a user)",
    ),
]


# The installed program must run its installed code: no checkout on the path.
INSTALLED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(command: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", INSTALLED_ENV)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def _host(*argv: str, stdin: str | None = None) -> Any:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "backend.cli", *argv]
    return json.loads(_run(command, env=env, input=stdin, timeout=300).stdout)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _owner(path: Path) -> tuple[str, str, int]:
    info = path.stat()
    import grp

    user = pwd.getpwuid(info.st_uid).pw_name
    return user, grp.getgrgid(info.st_gid).gr_name, stat.S_IMODE(info.st_mode)


def _blink_clip(folder: Path) -> None:
    """A customer who looks at the camera and blinks, then leaves: a frame folder, looped."""
    from device.config import Config
    from device.demo.portraits import close_eyes, load_portrait
    from device.vision.pipeline import FacePipeline

    rgb = load_portrait("collins")
    faces = FacePipeline.from_config(Config().vision).process(rgb, 0.0, track=False, embed=False)
    assert faces, "the pipeline finds no face in the demo portrait"
    frames = [rgb] * 10
    frames += [close_eyes(rgb, faces[0].landmarks, c) for c in (0.5, 0.95, 1.0, 1.0, 0.5)]
    frames += [rgb] * 25 + [np.full_like(rgb, 128)] * 40
    folder.mkdir(mode=0o755)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"f{index:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (folder / "fps.txt").write_text("15\n")


def _uninstall(*extra: str) -> subprocess.CompletedProcess:
    return _run(["bash", str(INSTALL), "--uninstall", *extra], timeout=300)


@pytest.fixture
def world() -> Iterator[Path]:
    """A scratch folder the service user may read (the frames, the host's public key)."""
    pytest.importorskip("skimage", reason="the demo extra carries the customer's portrait")
    for tool in ("apt-get", "useradd", "runuser", "mosquitto_sub"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found")
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    if OPT.exists() or ETC.exists():
        _uninstall("--purge")  # a previous run that stopped half-way
    folder = Path(tempfile.mkdtemp(prefix="blinkpay-field-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_install_provision_run_pay_uninstall(world: Path) -> None:
    processes: list[subprocess.Popen] = []
    broker = None
    try:
        # 1. install (docs/operations.md step 2)
        env = {**INSTALLED_ENV, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        installed = _run(["bash", str(INSTALL)], timeout=1800, env=env)
        assert "simulated hardware" in installed.stdout  # this CI machine is not a Pi
        assert _owner(ETC) == ("root", USER, 0o750) and _owner(DATA)[:2] == (USER, USER)
        assert (OPT / "LICENSE").exists() and (OPT / "NOTICE").exists()
        assert 'backend = "sim"' in (ETC / "config.toml").read_text()
        where = _run([f"{OPT}/venv/bin/python", "-c", "import device; print(device.__file__)"],
                     cwd="/")  # fmt: skip
        assert where.stdout.startswith(f"{OPT}/venv/"), where.stdout

        # the site: a broker, the reference host and its keys
        broker = start_broker(world / "broker")
        host_dir = world / "host"
        _host("keys", str(host_dir))
        host_toml = host_dir / "host.toml"
        host_toml.write_text(f'host_id = "field-host"\n[mqtt]\nurl = "{broker.url}"\n'
                             f'shard_id = "{SHARD}"\nkeepalive_s = 5\n')  # fmt: skip

        # 2. provision as documented (step 3): site files into /etc/blinkpay, then provision
        _run(["install", "-m", "0640", "-g", USER, str(host_dir / "signing.pub.pem"),
              str(ETC / "host-ed25519.pub")])  # fmt: skip
        provision = [BLINKPAY, "provision", "--device-id", DEVICE, "--broker", broker.url,
                     "--shard-id", SHARD, "--backend-key", str(ETC / "host-ed25519.pub"),
                     "--pin-key", str(host_dir / "pin.key"), "--json"]  # fmt: skip
        summary = json.loads(_run(provision).stdout)
        for key in (DATA / "keys").iterdir():  # the public halves may be read by anyone
            mode = 0o644 if key.name.endswith(".pub.pem") else 0o600
            assert _owner(key) == (USER, USER, mode), key
        assert _owner(ETC / "config.toml") == ("root", USER, 0o640)
        again = json.loads(_run(provision).stdout)  # idempotent: the same keys
        assert again["device_public_key"] == summary["device_public_key"]
        public, box = world / "device.pub", world / "device.x25519.pub"
        public.write_text(summary["device_public_key"])
        box.write_text(summary["device_x25519_public_key"])  # the shard is sealed to it
        _host("device", "add", "--config", str(host_toml), DEVICE, str(public),
              "--x25519", str(box), "--shard", SHARD)  # fmt: skip

        host = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--config", str(host_toml)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(host)
        portrait = world / "collins.png"
        from device.demo.portraits import portrait_path

        shutil.copy(portrait_path("collins"), portrait)
        enrolled = _host("enrol", "--config", str(host_toml), TOKEN, "--images", str(portrait),
                         "--terminal-config", str(ETC / "config.toml"),
                         "--balance", str(BALANCE))  # fmt: skip
        assert enrolled["published"]

        # 4. check as the service user, before the service starts (step 4)
        check = subprocess.run(
            ["runuser", "-u", USER, "--", BLINKPAY, "selftest", "--json",
             "--config", str(ETC / "config.toml")],
            capture_output=True, text=True, timeout=180, check=False, cwd=str(DATA),
            env=INSTALLED_ENV,
        )  # fmt: skip
        report = json.loads(check.stdout)
        assert check.returncode == 0, [c for c in report["checks"] if not c["ok"]]

        # 5. start: the service's command, as the service user (no systemd on CI)
        clip = world / "clip"
        _blink_clip(clip)
        # a recorded clip cannot answer the challenge light: run as a terminal without a ring,
        # whose operator chose PIN-less rides there (the default asks for the PIN)
        camera = {"BLINKPAY_HARDWARE__CAMERA__SOURCE": "file",
                  "BLINKPAY_HARDWARE__CAMERA__PATH": str(clip),
                  "BLINKPAY_HARDWARE__CAMERA__FILE_LOOP": "true",
                  "BLINKPAY_HARDWARE__PINS__CHALLENGE_LIGHT": "false",
                  "BLINKPAY_SESSION__PINLESS_WITHOUT_RING": "true"}  # fmt: skip
        terminal = subprocess.Popen(
            ["runuser", "-u", USER, "--", "env", *(f"{k}={v}" for k, v in camera.items()),
             f"{OPT}/venv/bin/blinkpay", "run", "--sim", "--config", str(ETC / "config.toml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=str(DATA),
            env=INSTALLED_ENV,
        )  # fmt: skip
        processes.append(terminal)

        topic = f"blinkpay/v1/dev/{DEVICE}/status"
        status = _run(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-C", "1",
                       "-W", "90", "-t", topic], timeout=120)  # fmt: skip
        assert json.loads(status.stdout)["state"] == "online", status.stdout

        def paid() -> bool:
            accounts = _host("account", "list", "--config", str(host_toml))
            return any(a["token"] == TOKEN and a["balance"] < BALANCE for a in accounts)

        _wait(paid, 180, "the customer's fare to reach the host")

    except BaseException:
        _stop(processes, broker)
        subprocess.run(["bash", str(INSTALL), "--uninstall", "--purge"], capture_output=True,
                       timeout=300, check=False)  # fmt: skip  # leave the machine as found
        raise
    _stop(processes, broker)
    # uninstall: the program goes, config and keys stay; --purge removes them too
    _uninstall()
    assert not OPT.exists() and not Path(BLINKPAY).exists()
    assert (ETC / "config.toml").exists() and (DATA / "keys" / "data.key").exists()
    _uninstall("--purge")
    assert not ETC.exists() and not DATA.exists()
    with pytest.raises(KeyError):
        pwd.getpwnam(USER)


def _stop(processes: list[subprocess.Popen], broker: Any) -> None:
    for process in reversed(processes):
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    if broker is not None:
        broker.stop()
