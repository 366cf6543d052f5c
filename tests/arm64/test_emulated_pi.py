"""arm64 proven on an x86 machine: an emulated Raspberry Pi OS-like root filesystem.

For each supported OS generation (Debian 12 Bookworm with Python 3.11, Debian 13 Trixie
with Python 3.13, what Raspberry Pi OS is built on), mmdebstrap makes an arm64 root
filesystem, run under qemu-user through binfmt_misc. In it:

- the signed offline bundle installs with no network at all (`unshare -n`): install.sh
  verifies it and lays its aarch64 wheels into the root filesystem's venv from this machine
  (pip emulated is slow; nothing of the install has to run on arm64);
- `blinkpay provision --sim`, `blinkpay selftest --sim` and the demo's paid ride
  (`blinkpay demo --ride-only`, over mosquitto) pass, run by the emulated arm64 Python with
  LiteRT 2.x, in a network namespace of its own;
- the shipped models give the demo portraits the same embeddings as on this machine,
  within int8 tolerance.

Marker `arm64`: excluded from the default run (pyproject's addopts); CI runs them as their
own step (`pytest -m arm64 tests/arm64`, see .ci/run). Root, mmdebstrap, qemu-user-static
and binfmt_misc with qemu-aarch64 enabled are needed, else the tests skip and say which is
missing. The root filesystems and the bundle are cached in $BLINKPAY_ARM64_CACHE (CI sets a
folder of that run) or in pytest's temp folder. docs/operations.md says how a field
engineer repeats it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.app.test_bundle import OFFLINE, _build

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install.sh"
HERE = Path(__file__).resolve().parent
SUITES = {"bookworm": "3.11", "trixie": "3.13"}
BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
# cosine between the arm64 and the x86 embedding of one portrait: int8 kernels may round
# differently (XNNPACK on arm64 vs x86), never change the face
MIN_COSINE = 0.99

pytestmark = [pytest.mark.arm64, pytest.mark.slow]


def _missing() -> str | None:
    """Why this machine cannot run an emulated arm64 root filesystem, or None."""
    if os.geteuid() != 0:
        return "needs root (mmdebstrap into a folder, chroot, unshare -n)"
    for tool, package in (("mmdebstrap", "mmdebstrap"), ("unshare", "util-linux"),
                          ("ip", "iproute2")):  # fmt: skip
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install {package})"
    if platform.machine() != "aarch64":
        if not Path("/usr/bin/qemu-aarch64-static").exists() and not shutil.which("qemu-aarch64"):
            return "qemu-aarch64 not found (apt-get install qemu-user-static binfmt-support)"
        if not BINFMT.exists() or not BINFMT.read_text().startswith("enabled"):
            return (
                "qemu-aarch64 is not enabled in binfmt_misc (mount -t binfmt_misc binfmt_misc "
                "/proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64)"
            )
    return None


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    folder = os.environ.get("BLINKPAY_ARM64_CACHE")
    path = Path(folder) if folder else tmp_path_factory.mktemp("arm64-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def bundle(cache: Path) -> Path:
    """The signed aarch64 bundle (operator.pub.pem beside it), built once per cache."""
    made = cache / "bundle" / "blinkpay-aarch64.tar.gz"
    if made.exists() and (made.parent / "operator.pub.pem").exists():
        return made
    return _build(made.parent, "aarch64")


def _rootfs_tar(cache: Path, suite: str) -> Path:
    """Debian SUITE arm64 as a tar, made by make-rootfs.sh once per cache (about 5 minutes
    on an idle machine; CI starts both early, in the background)."""
    tar = cache / f"{suite}-arm64.tar"
    if tar.exists():
        return tar
    result = subprocess.run(
        ["bash", str(HERE / "make-rootfs.sh"), suite, str(tar)],
        capture_output=True, text=True, timeout=1500, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        if "Could not resolve" in result.stderr or "Temporary failure" in result.stderr:
            pytest.skip(f"no Debian mirror reachable for mmdebstrap {suite}")
        raise AssertionError(f"make-rootfs.sh {suite}: {result.stderr[-3000:]}")
    return tar


def _in_root(root: Path, script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """A shell script run by the root filesystem's (arm64) /bin/sh, with no network (a
    namespace of its own with only loopback up) and this machine's /dev and a /proc mounted
    in a mount namespace of its own (gone with it): the demo's vending link needs a pty."""
    # QEMU_CPU: the Pi 4's core. qemu's default (`max`: SVE and more) lets numpy 2's
    # OpenBLAS pick kernels qemu gets wrong (a float32 matmul overflows) and XNNPACK crash
    # where it reads the topology in /sys (not mounted here); a Cortex-A72 is what they
    # meet on a Pi.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root",
           "LANG": "C.UTF-8", "TMPDIR": "/tmp", "QEMU_CPU": "cortex-a72"}  # fmt: skip
    return subprocess.run(
        ["unshare", "--net", "--mount", "--", "sh", "-c",
         'ip link set lo up && mount --rbind /dev "$0/dev" && mount -t proc proc "$0/proc"'
         ' && exec chroot "$0" /bin/sh -ec "$1"', str(root), script],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )  # fmt: skip


def _x86_embeddings() -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, str(HERE / "embeddings.py"), str(REPO / "models")],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _lay_in_demo_faces(root: Path, version: str) -> None:
    """The demo's portraits come with scikit-image and matplotlib (the demo extra; only
    their image files are read). Their aarch64 wheels, without dependencies, laid into the
    venv from this machine like the bundle's (pip's cache keeps them between runs)."""
    site = root / "opt" / "blinkpay" / "venv" / "lib" / f"python{version}" / "site-packages"
    tags = [
        f"--platform={tag}_aarch64"
        for tag in ("manylinux2014", "manylinux_2_17", "manylinux_2_27", "manylinux_2_28")
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-compile", "--only-binary=:all:", "--python-version", version, "--target",
         str(site / ".demo"), *tags, "scikit-image", "matplotlib"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot fetch the demo faces' packages for aarch64: {result.stderr[-300:]}")
    for entry in (site / ".demo").iterdir():
        if entry.name != "bin":
            shutil.move(str(entry), str(site / entry.name))
    shutil.rmtree(site / ".demo")


def _cosine(a: list[float], b: list[float]) -> float:
    va, vb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


@pytest.mark.timeout(2400)
@pytest.mark.parametrize("suite", list(SUITES))
def test_the_bundle_runs_on_emulated_arm64(
    suite: str, cache: Path, bundle: Path, tmp_path: Path
) -> None:
    version = SUITES[suite]
    timings: dict[str, float] = {}
    began = time.monotonic()
    tar = _rootfs_tar(cache, suite)
    timings["rootfs"] = time.monotonic() - began

    step = time.monotonic()
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(tar)], check=True, timeout=600)
    assert (root / "usr" / "bin" / f"python{version}").exists()
    # install.sh from this machine, its network cut: verify, lay the wheels in.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | OFFLINE
    installed = subprocess.run(
        ["unshare", "--net", "--", "bash", str(INSTALL), "--bundle", str(bundle), "--prefix",
         str(root), "--bundle-key", str(bundle.with_name("operator.pub.pem"))],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "signature verified" in installed.stdout
    assert f"from the bundle (no network; wheels for aarch64, CPython {version}" in (
        installed.stdout
    )
    site = root / "opt/blinkpay/venv/lib" / f"python{version}" / "site-packages"
    litert = sorted(p.name for p in site.glob("ai_edge_litert-*.dist-info"))
    assert litert and litert[0].startswith("ai_edge_litert-2."), litert
    _lay_in_demo_faces(root, version)
    shutil.copy(HERE / "embeddings.py", root / "tmp" / "embeddings.py")
    timings["install"] = time.monotonic() - step

    # On arm64 (emulated), with no network: provision, selftest, the paid ride, embeddings.
    step = time.monotonic()
    ran = _in_root(
        root,
        f"""
        uname -m
        blinkpay provision --sim --device-id arm64-{suite} --owner root --json
        blinkpay selftest --sim --json > /tmp/selftest.json 2> /tmp/selftest.err || true
        blinkpay demo --ride-only --json > /tmp/demo.json 2> /tmp/demo.err || true
        /opt/blinkpay/venv/bin/python /tmp/embeddings.py /opt/blinkpay/models > /tmp/emb.json
        """,
        timeout=1800,
    )
    timings["emulated"] = time.monotonic() - step
    print(f"arm64 {suite}: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert ran.stdout.splitlines()[0] == "aarch64"
    provisioned = json.loads(ran.stdout[ran.stdout.index("{") :])
    assert provisioned["device_id"] == f"arm64-{suite}" and provisioned["hardware"] == "sim"

    tmp = root / "tmp"
    for step in ("selftest", "demo"):  # each step's errors, in the failure's message
        assert (tmp / f"{step}.json").read_text().strip(), (tmp / f"{step}.err").read_text()
    selftest = json.loads((root / "tmp" / "selftest.json").read_text())
    failed = [c for c in selftest["checks"] if not c["ok"]]
    assert selftest["ok"], failed

    demo = json.loads((root / "tmp" / "demo.json").read_text())
    assert demo["online"], demo  # over mosquitto inside the root filesystem
    assert len(demo["scenes"]) == 1 and demo["scenes"][0]["ok"], demo["scenes"]
    assert demo["scenes"][0]["actual"].startswith("approved online")

    arm = json.loads((root / "tmp" / "emb.json").read_text().strip().splitlines()[-1])
    x86 = _x86_embeddings()
    assert arm["embedder_version"] == x86["embedder_version"]
    for key in ("collins", "hopper"):
        assert arm[key] is not None and x86[key] is not None, key
        cosine = _cosine(arm[key], x86[key])  # type: ignore[arg-type]
        print(f"arm64 {suite}: {key} embedding cosine to x86 {cosine:.5f}")
        assert cosine >= MIN_COSINE, (key, cosine)
