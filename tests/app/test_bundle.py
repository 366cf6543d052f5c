"""Offline bundles: `install.sh --make-bundle` makes one checksummed file with the wheels
for the target, its SHA256SUMS signed with the operator's key; `install.sh --bundle`
installs from it with pip's network disabled after checking the signature; a damaged
bundle is refused; an aarch64 bundle holds only aarch64 or pure-Python wheels."""

from __future__ import annotations

import base64
import json
import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.crypto.signing import load_public_key, private_pem, public_pem, verify_bytes
from tests.net.test_first_boot import Site, first_boot, site, wait_online, write_card  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install.sh"

# Two Pythons of wheels to download per bundle: minutes on a busy runner.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

# Every route to an index is closed: a pip that tried the network would fail.
OFFLINE = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "PIP_EXTRA_INDEX_URL": "",
    "PIP_FIND_LINKS": "",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def _operator_key(folder: Path) -> Path:
    """The operator's signing key (0600) and its public half beside it (operator.pub.pem)."""
    key = Ed25519PrivateKey.generate()
    path = folder / "operator.pem"
    path.write_bytes(private_pem(key))
    path.chmod(0o600)
    (folder / "operator.pub.pem").write_bytes(public_pem(key.public_key()))
    return path


def _build(folder: Path, arch: str) -> Path:
    """A signed bundle, or a skip when this machine cannot download the wheels at all."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"blinkpay-{arch}.tar.gz"
    key = _operator_key(folder)
    result = subprocess.run(
        ["bash", str(INSTALL), "--make-bundle", str(out), "--arch", arch, "--sign-key", str(key)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if "downloading the wheels failed" in result.stderr:
        pytest.skip(f"cannot download the {arch} wheels here (no index reachable)")
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _wheels(bundle: Path) -> list[str]:
    with tarfile.open(bundle) as tar:
        return [Path(n).name for n in tar.getnames() if n.endswith(".whl")]


@pytest.fixture(scope="module")
def native_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    arch = platform.machine()
    if arch not in ("x86_64", "aarch64"):
        pytest.skip(f"no bundle for {arch}")
    return _build(tmp_path_factory.mktemp("bundle"), arch)


def test_bundle_is_one_checksummed_file(native_bundle: Path) -> None:
    sums = native_bundle.with_name(native_bundle.name + ".sha256")
    check = subprocess.run(["sha256sum", "-c", sums.name], cwd=native_bundle.parent,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    with tarfile.open(native_bundle) as tar:
        names = set(tar.getnames())
    for name in ("install.sh", "SHA256SUMS", "BUNDLE", "LICENSE", "NOTICE",
                 "models/manifest.json", "systemd/blinkpay.service"):  # fmt: skip
        assert f"blinkpay-bundle/{name}" in names, name
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    for entry in manifest["models"].values():
        assert f"blinkpay-bundle/models/{Path(entry['file']).name}" in names
    assert any(w.startswith("blinkpay-") for w in _wheels(native_bundle))
    with tarfile.open(native_bundle) as tar:  # signed, as device/crypto/signing.py verifies
        sums = tar.extractfile("blinkpay-bundle/SHA256SUMS").read()
        signature = tar.extractfile("blinkpay-bundle/SHA256SUMS.sig").read()
    public = load_public_key(native_bundle.with_name("operator.pub.pem"))
    assert verify_bytes(public, sums, base64.b64encode(signature).decode())


def test_bundle_installs_with_no_network(native_bundle: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    # No PYTHONPATH: a checkout on it would look like an installed blinkpay to pip.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | OFFLINE
    result = subprocess.run(
        ["bash", str(INSTALL), "--bundle", str(native_bundle), "--prefix", str(prefix),
         "--bundle-key", str(native_bundle.with_name("operator.pub.pem"))],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from the bundle (no network)" in result.stdout
    assert "signature verified" in result.stdout
    opt = prefix / "opt" / "blinkpay"
    # The installed program runs and finds its models (sha256 against the manifest).
    selftest_env = {**env, "BLINKPAY_VISION__MODELS_DIR": str(opt / "models"),
                    "BLINKPAY_DEVICE__DATA_DIR": str(tmp_path / "data"),
                    "BLINKPAY_MQTT__ENABLED": "false"}  # fmt: skip
    check = subprocess.run(
        [str(opt / "venv" / "bin" / "blinkpay"), "selftest", "--sim", "--json",
         "--config", str(prefix / "etc" / "blinkpay" / "config.toml")],
        capture_output=True, text=True, env=selftest_env, timeout=300, check=False,
    )  # fmt: skip
    report = json.loads(check.stdout)
    models = [c for c in report["checks"] if c["name"].startswith("models.")]
    assert models and all(c["ok"] for c in models), models
    assert (opt / "LICENSE").exists()


def test_a_damaged_bundle_is_refused(native_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / native_bundle.name
    shutil.copy(native_bundle, copy)
    shutil.copy(native_bundle.with_name(native_bundle.name + ".sha256"), tmp_path)
    with copy.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00" * 16)
    result = subprocess.run(
        ["bash", str(INSTALL), "--bundle", str(copy), "--prefix", str(tmp_path / "p"),
         "--bundle-key", str(native_bundle.with_name("operator.pub.pem"))],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "damaged or altered" in result.stderr
    assert not (tmp_path / "p").exists()


def test_aarch64_bundle_holds_only_aarch64_or_pure_wheels(tmp_path: Path) -> None:
    bundle = _build(tmp_path, "aarch64")
    wheels = _wheels(bundle)
    assert wheels
    foreign = [w for w in wheels if not (w.endswith("-none-any.whl") or "aarch64" in w)]
    assert not foreign, foreign
    # Every supported Raspberry Pi OS Python (Bookworm 3.11, Trixie 3.13), with LiteRT 2.x
    # (its aarch64 wheels are tagged manylinux_2_27), and the bundle says which.
    for abi in ("cp311", "cp313"):
        litert = [w for w in wheels if w.startswith("ai_edge_litert-2.") and f"-{abi}-" in w]
        assert litert, (abi, [w for w in wheels if w.startswith("ai_edge_litert")])
        assert any(w.startswith("numpy-") and f"-{abi}-" in w for w in wheels), abi
    with tarfile.open(bundle) as tar:
        described = tar.extractfile("blinkpay-bundle/BUNDLE").read().decode()
    assert "python=cp311,cp313" in described and "litert=2." in described


@pytest.mark.mqtt
def test_a_card_with_the_bundle_brings_a_terminal_online(
    native_bundle: Path,
    site: Site,  # noqa: F811  (the fixture of tests/net/test_first_boot.py)
    tmp_path: Path,
) -> None:
    """The whole first boot: the card holds the signed bundle and the operator's public
    key; its script verifies and installs the bundle with no network, provisions, registers
    with the one-time token, and the installed terminal comes online."""
    with site.host_toml.open("a") as toml:
        toml.write(
            f'[boot]\noperator_public_key_file = "{native_bundle.parent}/operator.pub.pem"\n'
        )
    card, root = tmp_path / "card", tmp_path / "terminal"
    write_card(site, card, "--bundle", str(native_bundle))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "BLINKPAY_"))}
    booted = first_boot(card, root, env | OFFLINE)
    assert booted.returncode == 0, booted.stdout + booted.stderr
    assert "signature verified" in booted.stdout and "registered gate-boot" in booted.stdout
    opt = root / "opt" / "blinkpay"
    run_env = env | {"BLINKPAY_VISION__MODELS_DIR": str(opt / "models")}
    terminal = subprocess.Popen(
        [str(opt / "venv" / "bin" / "blinkpay"), "run", "--config",
         str(root / "etc" / "blinkpay" / "config.toml")],
        env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert wait_online(site, 120), "the installed terminal did not come online"
    finally:
        terminal.terminate()
        terminal.wait(timeout=30)
