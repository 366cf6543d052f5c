"""install.sh: shellcheck-clean, and a second `--dev --prefix` run changes nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install.sh"
INSTALLED_PROGRAM = "/opt/blinkpay/venv/bin/blinkpay"


def test_shellcheck_install_sh() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install -y shellcheck)")
    scripts = [str(INSTALL), str(REPO / "backend" / "firstboot.sh")]  # and the card's script
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_analyze_verify_units(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    units = sorted((REPO / "systemd").glob("*.service"))
    assert units
    # verify needs ExecStart's program to exist: the unit names the installed
    # /opt/blinkpay/venv/bin/blinkpay, so the copies point at a stand-in executable.
    program = tmp_path / "blinkpay"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    copies = []
    for unit in units:
        text = unit.read_text()
        assert INSTALLED_PROGRAM in text
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED_PROGRAM, str(program)))
        copies.append(str(copy))
    result = subprocess.run([tool, "verify", *copies], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


MAX_EXPOSURE = 2.5  # systemd-analyze's scale: 0 is locked down, 10 is fully exposed


def test_service_exposure_is_at_most_2_5(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    program = tmp_path / "blinkpay"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / "blinkpay.service"
    text = (REPO / "systemd" / "blinkpay.service").read_text()
    unit.write_text(text.replace(INSTALLED_PROGRAM, str(program)))
    result = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 252)")
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def _tree(*roots: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path under the roots: mode, size, mtime (ns) and, for symlinks, the target."""
    state: dict[str, tuple[int, int, int, str]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in [*dirnames, *filenames]:
                path = Path(dirpath) / name
                info = path.lstat()
                target = os.readlink(path) if path.is_symlink() else ""
                state[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns, target)
    return state


@pytest.mark.slow
def test_install_dev_prefix_twice_changes_nothing(tmp_path: Path) -> None:
    # A fresh venv that sees this venv's packages through a .pth file, so the installer's
    # pip run finds every dependency present and only installs blinkpay itself (bounded,
    # no downloads but the build backend).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "blinkpay-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # A snapshot of the sources, so edits elsewhere in the checkout during the test do not
    # (rightly) make the second run reinstall.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("device", "backend"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("install.sh", "pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, source / name)
    prefix = tmp_path / "prefix"
    command = [
        "bash",
        str(source / "install.sh"),
        "--dev",
        "--prefix",
        str(prefix),
        "--venv",
        str(venv),
    ]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    first = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (venv / "bin" / "blinkpay").exists()
    before = _tree(prefix, venv)

    second = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "package up to date" in second.stdout
    assert _tree(prefix, venv) == before


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    result = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--prefix", str(prefix)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would run" in result.stdout
    assert not prefix.exists() or _tree(prefix) == {}


def test_unknown_option_is_a_clear_error() -> None:
    result = subprocess.run(
        ["bash", str(INSTALL), "--bogus"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "unknown option --bogus" in result.stderr


def test_help_is_the_header_only() -> None:
    result = subprocess.run(
        ["bash", str(INSTALL), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not result.stderr
    assert "--uninstall" in result.stdout and "set -" not in result.stdout


def test_dry_run_on_a_fresh_machine_prints_no_errors() -> None:
    # No prefix: the real paths, which this machine does not have (or are left alone).
    result = subprocess.run(
        ["bash", str(INSTALL), "--dry-run"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    if "not a Raspberry Pi" in result.stdout:
        assert "simulated hardware" in result.stdout
    # It says what it was, never that something got installed.
    assert "installed." not in result.stdout
    assert result.stdout.splitlines()[-1].startswith("install.sh: dry run done: nothing was")


def test_dry_run_uninstall_changes_nothing(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "opt" / "blinkpay").mkdir(parents=True)
    before = _tree(prefix)
    result = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--uninstall", "--purge", "--prefix", str(prefix)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "would run: rm -rf" in result.stdout
    assert _tree(prefix) == before


def test_uninstall_warns_about_unsent_transactions_and_purge_keeps_them(tmp_path: Path) -> None:
    """A terminal whose ledger holds a transaction the host has not acknowledged: uninstall
    says so and keeps it; --purge refuses unless --discard-unsent."""
    from device.provisioning import provision
    from device.store.terminal_store import open_store

    prefix = tmp_path / "prefix"
    data = prefix / "var" / "lib" / "blinkpay"
    sections = {"device": {"id": "gate-9", "data_dir": "/var/lib/blinkpay"}}
    config_file = prefix / "etc" / "blinkpay" / "config.toml"
    made = provision(config_file, {**sections, "device": {"id": "gate-9", "data_dir": str(data)}})
    config_file.write_text(config_file.read_text().replace(str(data), "/var/lib/blinkpay"))
    store = open_store(made.config.store, data)
    try:
        tx = {"id": "018f4e2c-0000-7000-8000-0000000000aa", "amount": 250, "currency": "EUR",
              "token": None, "mode": "turnstile", "created_at": "2026-12-06T03:00:00.000000Z",
              "reasons": []}  # fmt: skip
        store.ledger.write_pending(tx)
    finally:
        store.close()
    program = prefix / "opt" / "blinkpay" / "venv" / "bin" / "blinkpay"  # the installed program
    program.parent.mkdir(parents=True)
    program.write_text(f'#!/bin/sh\nexec {Path(sys.executable).parent / "blinkpay"} "$@"\n')
    program.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLINKPAY_")}

    def uninstall(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(INSTALL), "--uninstall", "--prefix", str(prefix), *extra],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip

    purge = uninstall("--purge")
    assert purge.returncode == 1
    assert "warning: 1 transaction(s) in" in purge.stdout and "--discard-unsent" in purge.stderr
    assert (data / "blinkpay.db").exists() and program.exists()
    plain = uninstall()
    assert plain.returncode == 0 and "not acknowledged by the host yet" in plain.stdout
    assert "they are kept" in plain.stdout and (data / "blinkpay.db").exists()
