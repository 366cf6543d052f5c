"""Config that validates but would break payment is refused; key files the service cannot
read are one clear line (config check, run, db stats, db verify), never a traceback; the
database and its WAL are 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.cli import main
from device.config import ConfigError, config_from_mapping
from device.store.db import StoreDatabase
from tests.app.conftest import SimTerminal


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("session", {"cooldown_s": float("inf")}, "must be finite"),
        ("session", {"cooldown_s": 1e300}, "less than or equal to 60"),
        ("payment", {"fare": True}, "payment.fare = True: must be a whole number"),
        ("payment", {"fare": "300"}, "payment.fare = '300': must be a whole number"),
        ("payment", {"fare": 300.0}, "must be a whole number"),
        ("payment", {"fare": 20_000}, "fare must not exceed max_per_tx"),
        ("payment", {"max_per_tx": False}, "must be a whole number"),
    ],
)
def test_config_that_would_break_payment_is_refused(
    section: str, values: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping({section: values})
    assert expected in str(err.value)


def test_whole_numbers_still_pass_for_float_settings() -> None:
    config = config_from_mapping({"session": {"cooldown_s": 2}, "payment": {"fare": 300}})
    assert config.session.cooldown_s == 2.0 and config.payment.fare == 300


def _with_mqtt(sim_terminal: SimTerminal, backend_key: Path | None) -> Path:
    text = sim_terminal.config_path.read_text().replace("enabled = false", "enabled = true")
    if backend_key is not None:
        text = text.replace("[mqtt]", f'[mqtt]\nbackend_public_key_file = "{backend_key}"')
    sim_terminal.config_path.write_text(text)
    return sim_terminal.config_path


def test_config_check_fails_on_a_missing_or_garbage_backend_key(
    sim_terminal: SimTerminal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(sim_terminal.config_path)]) == 0
    missing = tmp_path / "absent.pub"
    assert main(["config", "check", str(_with_mqtt(sim_terminal, missing))]) == 1
    assert "mqtt.backend_public_key_file" in capsys.readouterr().err
    missing.write_text("not a key at all\n")
    assert main(["config", "check", str(sim_terminal.config_path)]) == 1
    err = capsys.readouterr().err
    assert "not an Ed25519 public key" in err and "Traceback" not in err


def test_config_check_fails_on_a_key_file_too_widely_readable_or_unreadable(
    sim_terminal: SimTerminal, capsys: pytest.CaptureFixture[str]
) -> None:
    signing = sim_terminal.data_dir / "keys" / "device_ed25519.pem"
    signing.chmod(0o644)
    assert main(["config", "check", str(sim_terminal.config_path)]) == 1
    assert "accessible by group or others" in capsys.readouterr().err
    signing.chmod(0o600)
    pin = sim_terminal.data_dir / "keys" / "pin.key"
    pin.unlink()
    pin.mkdir(mode=0o700)  # a key file that exists but cannot be read as a file
    assert main(["config", "check", str(sim_terminal.config_path)]) == 1
    err = capsys.readouterr().err
    assert "store.pin_key_file" in err and "cannot be read" in err


@pytest.fixture
def unreadable_data_key(
    sim_terminal: SimTerminal, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The data key as a non-root service user sees a mode-000 file (root reads anything,
    so the refusal the kernel would give is raised where the file is read)."""
    key = sim_terminal.data_dir / "keys" / "data.key"
    key.chmod(0o000)
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == key and os.geteuid() == 0:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    yield key


@pytest.mark.parametrize(
    "command", [["db", "stats"], ["db", "verify"], ["config", "check"], ["run", "--sim"]]
)
def test_a_mode_000_key_file_is_one_clear_line(
    sim_terminal: SimTerminal,
    unreadable_data_key: Path,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = str(sim_terminal.config_path)
    args = [*command, config] if command == ["config", "check"] else [*command, "--config", config]
    if command[0] == "db":  # the database exists once the service has run
        StoreDatabase(sim_terminal.data_dir / "blinkpay.db").close()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "PermissionError" not in err
    assert f"{unreadable_data_key}" in err and "cannot be read" in err


def test_database_and_wal_are_0600_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        database = StoreDatabase(tmp_path / "data" / "blinkpay.db")
        with database.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS t (x)")
            db.execute("INSERT INTO t VALUES (1)")
        names = ("blinkpay.db", "blinkpay.db-wal", "blinkpay.db-shm")
        files = [tmp_path / "data" / n for n in names]
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files if f.exists()}
        database.close()
    finally:
        os.umask(old)
    assert modes["blinkpay.db"] == 0o600 and modes["blinkpay.db-wal"] == 0o600, modes
    assert all(mode == 0o600 for mode in modes.values()), modes
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def test_an_existing_0644_database_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "blinkpay.db"
    StoreDatabase(path).close()
    path.chmod(0o644)
    StoreDatabase(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_host_database_is_0600_under_a_permissive_umask(tmp_path: Path) -> None:
    from backend.db import HostDb

    old = os.umask(0)
    try:
        host_db = HostDb(tmp_path / "host.db")
        with host_db.transaction() as conn:
            conn.execute("INSERT INTO devices (device_id) VALUES ('gate-1')")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if p.is_file()}
        host_db.close()
    finally:
        os.umask(old)
    assert modes and all(mode == 0o600 for mode in modes.values()), modes
