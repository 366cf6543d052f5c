"""Every `blinkpay` and `blinkpay-host` command against missing, directory, garbage and
unreadable paths (configs, key files, images, host files): each ends with a non-zero exit
and one clear line on stderr, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device.config import load_config
from device.provisioning import provision

WORKER = Path(__file__).with_name("bad_paths_worker.py")
REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

# Every command that reads a terminal config, with the other arguments it needs.
CONFIG_COMMANDS: list[list[str]] = [
    ["run", "--sim"],
    ["net"],
    ["selftest", "--sim"],
    ["gpio-test", "--sim"],
    ["camera-test", "--sim", "--seconds", "1"],
    ["register", "--token", "{file}", "--wait", "1"],
    ["enroll", "{image}"],
    ["eval", "verify", "--pairs", "{file}", "--images", "{dir}"],
    ["eval", "identify", "--root", "{dir}", "--gallery", "{file}", "--probes", "{file}"],
    ["eval", "liveness", "--live", "{dir}", "--attack", "{dir}"],
    ["bench", "pipeline", "--images", "{dir}"],
    ["db", "stats"],
    ["db", "verify"],
    ["db", "rekey"],
    ["config", "show"],
]
HOST_CONFIG_COMMANDS: list[list[str]] = [
    ["serve"],
    ["enrol", "tok", "--template", "{file}"],
    ["account", "set", "tok", "suspend"],
    ["account", "list"],
    ["device", "add", "gate", "{file}"],
    ["device", "add", "gate", "--boot-dir", "{dir}"],
    ["device", "list"],
    ["snapshot"],
]
# Commands that read their own input files before the config.
READS_FIRST = ("eval", "bench")
# Commands that use the terminal's keys once the config is fine.
KEY_COMMANDS: list[list[str]] = [
    ["run", "--sim"],
    ["selftest", "--sim"],
    ["db", "stats"],
    ["db", "verify"],
    ["db", "rekey"],
]


@pytest.fixture
def world() -> Iterator[Path]:
    """A folder every user may enter (a non-root run must reach the files it is given)."""
    folder = Path(tempfile.mkdtemp(prefix="blinkpay-bad-paths-"))
    folder.chmod(0o755)
    (folder / "dir").mkdir()
    (folder / "garbage").write_bytes(b"\x00\xffnot toml, not PEM, not an image\n")
    (folder / "file.txt").write_text("a b 1\n")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fill(argv: list[str], world: Path) -> list[str]:
    values = {"{image}": world / "garbage", "{file}": world / "file.txt", "{dir}": world / "dir"}
    return [str(values.get(arg, arg)) for arg in argv]


def _work(plan: dict[str, Any], user: int | None = None) -> list[dict[str, Any]]:
    plan_file = Path(tempfile.mkstemp(suffix=".json")[1])
    plan_file.write_text(json.dumps(plan))
    plan_file.chmod(0o644)
    command = [sys.executable, str(WORKER), str(plan_file)]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", *command]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": "/tmp"}
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=600, check=False
        )
    finally:
        plan_file.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _assert_clear(results: list[dict[str, Any]]) -> None:
    problems = []
    for result in results:
        line = " ".join(result["argv"])
        if result["traceback"]:
            problems.append(f"{line}\n{result['traceback']}")
        elif "Traceback" in result["stderr"]:
            problems.append(f"{line}\n{result['stderr']}")
        elif result["code"] in (0, None):
            problems.append(f"{line}: exit {result['code']} for a bad path")
        elif not result["stderr"].strip():
            problems.append(f"{line}: failed without saying why")
    assert not problems, "\n\n".join(problems)


def _config_runs(config: str, world: Path) -> list[list[str]]:
    runs = [["blinkpay", *_fill(c, world), "--config", config] for c in CONFIG_COMMANDS]
    runs.append(["blinkpay", "config", "check", config])
    runs += [["blinkpay-host", *_fill(c, world), "--config", config] for c in HOST_CONFIG_COMMANDS]
    return runs


@pytest.mark.parametrize("kind", ["missing", "dir", "garbage", "unreadable"])
def test_every_command_with_a_bad_config_path(world: Path, kind: str) -> None:
    config = {"missing": world / "absent.toml", "dir": world / "dir",
              "garbage": world / "garbage", "unreadable": world / "locked.toml"}[kind]  # fmt: skip
    deny = []
    if kind == "unreadable":
        config.write_text("[device]\n")
        config.chmod(0)
        deny = [str(config)]  # root reads mode 000 files: the worker refuses them instead
    results = _work({"runs": _config_runs(str(config), world), "deny": deny})
    _assert_clear(results)
    for result in results:  # the line names the bad path (eval, bench read theirs first)
        assert str(config) in result["stderr"] or result["argv"][1] in READS_FIRST, result


def test_an_unreadable_default_config_is_one_line(world: Path) -> None:
    etc = world / "etc-blinkpay"
    etc.mkdir(mode=0o750)
    (etc / "config.toml").write_text("[device]\n")
    runs = [["blinkpay", *_fill(c, world)] for c in CONFIG_COMMANDS]
    plan = {"runs": runs, "deny": [str(etc)], "default_config": str(etc / "config.toml")}
    results = _work(plan)
    _assert_clear(results)
    for result in results:
        assert "sudo -u blinkpay" in result["stderr"] or result["argv"][1] in READS_FIRST, result


def _nobody_can_run_python() -> str | None:
    if os.geteuid() != 0:
        return "not root: cannot switch to an unprivileged user"
    if shutil.which("setpriv") is None:
        return "setpriv not installed"
    probe = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-c", "import numpy"],
        capture_output=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"{sys.executable} cannot be run by an unprivileged user (its home is private)"
    return None


def test_mode_000_as_an_unprivileged_user(world: Path) -> None:
    reason = _nobody_can_run_python()
    if reason:
        pytest.skip(reason)
    config = world / "locked.toml"
    config.write_text("[device]\n")
    config.chmod(0)
    _assert_clear(_work({"runs": _config_runs(str(config), world)}, user=NOBODY))


# -- key files ------------------------------------------------------------------------------


@pytest.fixture
def provisioned(world: Path) -> Path:
    """A provisioned terminal (sim, MQTT off) with its database made."""
    from device.store.terminal_store import open_store

    sections = {
        "device": {"id": "gate-bad", "data_dir": str(world / "data")},
        "hardware": {"backend": "sim", "camera": {"source": "synthetic"}},
        "mqtt": {"enabled": False},
    }
    config = world / "config.toml"
    provision(config, sections)
    loaded = load_config(config, env={})
    open_store(loaded.store, loaded.device.data_dir).close()
    return config


def _spoil(path: Path, kind: str) -> list[str]:
    """Make the key file bad in one way; the paths to deny (for `unreadable`)."""
    if kind == "missing":
        path.unlink()
    elif kind == "dir":
        path.unlink()
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage")
    elif kind == "mode":
        path.chmod(0o644)
    elif kind == "owner":
        os.chown(path, NOBODY, NOBODY) if os.geteuid() == 0 else pytest.skip("needs root")
    elif kind == "unreadable":
        return [str(path)]
    return []


@pytest.mark.parametrize("key", ["data.key", "device_ed25519.pem"])
@pytest.mark.parametrize("kind", ["missing", "dir", "garbage", "mode", "owner", "unreadable"])
def test_key_file_problems_are_one_line(provisioned: Path, key: str, kind: str) -> None:
    path = provisioned.parent / "data" / "keys" / key
    deny = _spoil(path, kind)
    runs = [["blinkpay", *c, "--config", str(provisioned)] for c in KEY_COMMANDS]
    results = _work({"runs": runs, "deny": deny})
    for result in results:
        # selftest reports a bad key as a failed check; the others stop with one line
        if result["argv"][1] == "selftest":
            assert result["code"] == 1 and not result["traceback"], result
        elif key == "data.key" or result["argv"][1] == "run":
            _assert_clear([result])
        else:  # the db commands need only the data key
            assert not result["traceback"], result
    if kind == "mode":
        assert any("chmod 600" in r["stderr"] for r in results), results


# -- provision, images and the host's own files ----------------------------------------------


def test_provision_and_host_file_problems_are_one_line(world: Path) -> None:
    (world / "a-file").write_text("x")
    locked = world / "locked-etc"
    locked.mkdir()
    common = ["--data-dir", str(world / "data"), "--sim"]
    runs = [
        ["blinkpay", "provision", "--config-out", str(world / "dir"), *common],
        ["blinkpay", "provision", "--config-out", str(locked / "c.toml"), *common],
        ["blinkpay", "provision", "--config-out", str(world / "c1.toml"), "--sim",
         "--data-dir", str(world / "a-file")],
        ["blinkpay", "enroll", str(world / "absent.jpg")],
        ["blinkpay", "enroll", str(world / "dir")],
        ["blinkpay", "enroll", str(world / "locked-etc" / "x.jpg")],
        ["blinkpay-host", "keys", str(world / "a-file")],
        ["blinkpay-host", "keys", str(locked / "keys")],
    ]  # fmt: skip
    for bad in ("absent", "dir", "garbage"):
        path = {"absent": world / "absent", "dir": world / "dir", "garbage": world / "garbage"}
        runs.append(["blinkpay", "provision", "--config-out", str(world / f"c-{bad}.toml"),
                     "--pin-key", str(path[bad]), *common, "--force"])  # fmt: skip
        runs.append(["blinkpay-host", "enrol", "tok", "--template", str(path[bad])])
        runs.append(["blinkpay-host", "enrol", "tok", "--images", str(path[bad])])
        runs.append(["blinkpay-host", "device", "add", "gate", str(path[bad])])
    results = _work({"runs": runs, "deny": [str(locked)]})
    _assert_clear(results)


def test_host_db_path_that_is_a_directory(world: Path) -> None:
    config = world / "host.toml"
    config.write_text(f'db_path = "{world / "dir"}"\n[mqtt]\nenabled = false\n')
    runs = [["blinkpay-host", "account", "list", "--config", str(config)],
            ["blinkpay-host", "device", "list", "--config", str(config)]]  # fmt: skip
    _assert_clear(_work({"runs": runs}))


def test_the_default_mode_fix_is_stated(provisioned: Path) -> None:
    key = provisioned.parent / "data" / "keys" / "data.key"
    key.chmod(0o640)
    assert stat.S_IMODE(key.stat().st_mode) == 0o640
    results = _work({"runs": [["blinkpay", "db", "stats", "--config", str(provisioned)]]})
    assert f"chmod 600 {key}" in results[0]["stderr"]


@pytest.mark.parametrize("kind", ["file", "unreadable"])
def test_a_bad_data_directory_is_one_line(world: Path, kind: str) -> None:
    data = world / "data-bad"
    config = world / "bad-data.toml"
    config.write_text(f'[device]\ndata_dir = "{data}"\n[mqtt]\nenabled = false\n')
    deny: list[str] = []
    if kind == "file":
        data.write_text("not a directory")
    else:
        data.mkdir()
        deny = [str(data)]
    runs = [["blinkpay", *c, "--config", str(config)] for c in KEY_COMMANDS]
    runs.append(["blinkpay", "provision", "--config-out", str(world / "p.toml"), "--sim",
                 "--data-dir", str(data)])  # fmt: skip
    results = _work({"runs": runs, "deny": deny})
    for result in results:
        if result["argv"][1] == "selftest":  # a failed check, not a stop
            assert result["code"] == 1 and not result["traceback"], result
        else:
            _assert_clear([result])
