"""Signed bundles, without downloading wheels: `install.sh --bundle` installs only a
bundle whose SHA256SUMS carries the operator's Ed25519 signature (made here with the
project's device/crypto/signing.py, so openssl and signing.py are shown to agree), and
`--make-bundle` refuses to start without a private key only its owner can read. Building
and signing a real bundle: test_bundle.py."""

from __future__ import annotations

import base64
import hashlib
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.crypto.signing import private_pem, public_pem, sign_bytes

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install.sh"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _bundle(folder: Path, key: Ed25519PrivateKey | None, tamper: bool = False) -> Path:
    """A bundle's frame (install.sh, BUNDLE, SHA256SUMS, its signature); no wheels."""
    stage = folder / "stage" / "blinkpay-bundle"
    stage.mkdir(parents=True)
    shutil.copy(INSTALL, stage / "install.sh")
    (stage / "BUNDLE").write_text(f"arch={platform.machine()}\npython=cp311\n")
    sums = "".join(
        f"{hashlib.sha256((stage / n).read_bytes()).hexdigest()}  ./{n}\n"
        for n in ("BUNDLE", "install.sh")
    )
    (stage / "SHA256SUMS").write_text(sums)
    if key is not None:
        signature = base64.b64decode(sign_bytes(key, sums.encode()))
        (stage / "SHA256SUMS.sig").write_bytes(signature)
    if tamper:  # a line changed after signing
        (stage / "SHA256SUMS").write_text(sums.replace("./BUNDLE", "./BUNDLE "))
    out = folder / "bundle.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(stage, arcname="blinkpay-bundle")
    return out


def _install(bundle: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--bundle", str(bundle), "--prefix", str(folder / "p"),
         "--dry-run", *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def operator(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path]:
    key = Ed25519PrivateKey.generate()
    public = tmp_path / "operator.pub.pem"
    public.write_bytes(public_pem(key.public_key()))
    return key, public


def test_a_signed_bundle_verifies(tmp_path: Path, operator) -> None:
    key, public = operator
    result = _install(_bundle(tmp_path, key), tmp_path, "--bundle-key", str(public))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"signature verified with {public}" in result.stdout
    assert "bundle verified" in result.stdout


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("other key", "signature does not verify"),
        ("altered", "signature does not verify"),
        ("unsigned", "the bundle is not signed"),
        ("no key", "give --bundle-key PUB"),
    ],
)
def test_a_bundle_that_does_not_verify_is_refused(
    tmp_path: Path, operator, case: str, says: str
) -> None:
    key, public = operator
    signer = {"other key": Ed25519PrivateKey.generate(), "unsigned": None}.get(case, key)
    bundle = _bundle(tmp_path, signer, tamper=case == "altered")
    extra = [] if case == "no key" else ["--bundle-key", str(public)]
    if case == "no key" and Path("/etc/blinkpay/operator.pub.pem").exists():
        pytest.skip("this machine has an installed operator key")
    result = _install(bundle, tmp_path, *extra)
    assert result.returncode != 0
    assert says in result.stderr and "Traceback" not in result.stderr
    assert "bundle verified" not in result.stdout
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(("mode", "says"), [(None, "needs --sign-key"),
                                            (0o644, "readable by others"),
                                            (0o600, "not an Ed25519 private key")])  # fmt: skip
def test_make_bundle_wants_a_private_operator_key(
    tmp_path: Path, mode: int | None, says: str
) -> None:
    argv = ["bash", str(INSTALL), "--make-bundle", str(tmp_path / "b.tar.gz")]
    if mode is not None:
        key = tmp_path / "operator.pem"
        key.write_bytes(private_pem(Ed25519PrivateKey.generate()) if mode == 0o644 else b"junk")
        key.chmod(mode)
        argv += ["--sign-key", str(key)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and says in result.stderr, result.stderr
    assert not (tmp_path / "b.tar.gz").exists()
