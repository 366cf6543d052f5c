"""Schema, migrations and connection settings of the one SQLite database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from device.store import db as dbmod
from device.store.db import SCHEMA_VERSION, DatabaseError, StoreDatabase


def columns(database: StoreDatabase, table: str) -> set[str]:
    return {row[1] for row in database.db.execute(f"PRAGMA table_info({table})").fetchall()}


def test_new_database_has_current_schema_wal_and_secure_delete(tmp_path: Path) -> None:
    database = StoreDatabase(tmp_path / "sub" / "blinkpay.db")
    try:
        assert database.schema_version() == SCHEMA_VERSION >= 1
        assert database.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert database.db.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert database.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        tables = set(database.db.table_names())
        assert {"shard", "templates", "accounts", "ledger", "audit"} <= tables
        assert database.integrity_problems() == []
    finally:
        database.close()


def test_accounts_hold_no_biometric_data_and_templates_no_account_data(tmp_path: Path) -> None:
    database = StoreDatabase(tmp_path / "blinkpay.db")
    try:
        accounts = columns(database, "accounts")
        assert accounts == {
            "token",
            "status",
            "daily_limit",
            "offline_allowance",
            "updated_at",
        }
        assert columns(database, "templates") == {"token", "nonce", "ciphertext"}
        with pytest.raises(sqlite3.IntegrityError):
            database.db.execute(
                "INSERT INTO accounts (token, status, daily_limit, offline_allowance) "
                "VALUES ('t', 'frozen', 1, 1)"
            )
    finally:
        database.close()


def test_reopening_does_not_rerun_migrations(tmp_path: Path) -> None:
    path = tmp_path / "blinkpay.db"
    StoreDatabase(path).close()
    database = StoreDatabase(path)  # would fail with "table shard already exists"
    assert database.schema_version() == SCHEMA_VERSION
    database.close()


def test_migrations_run_in_order_from_an_older_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "blinkpay.db"
    StoreDatabase(path).close()

    def add_column(db: object) -> None:
        db.execute("ALTER TABLE audit ADD COLUMN origin TEXT")  # type: ignore[attr-defined]

    monkeypatch.setattr(dbmod, "MIGRATIONS", [*dbmod.MIGRATIONS, add_column])
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    database = StoreDatabase(path)
    try:
        assert database.schema_version() == SCHEMA_VERSION + 1
        assert "origin" in columns(database, "audit")
    finally:
        database.close()


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "blinkpay.db"
    StoreDatabase(path).close()

    def half_done(db: object) -> None:
        db.execute("ALTER TABLE audit ADD COLUMN origin TEXT")  # type: ignore[attr-defined]
        db.execute("THIS IS NOT SQL")  # type: ignore[attr-defined]

    monkeypatch.setattr(dbmod, "MIGRATIONS", [*dbmod.MIGRATIONS, half_done])
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(DatabaseError):
        StoreDatabase(path)
    monkeypatch.undo()
    database = StoreDatabase(path)
    try:
        assert database.schema_version() == SCHEMA_VERSION
        assert "origin" not in columns(database, "audit")
    finally:
        database.close()


def test_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "blinkpay.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer than this software"):
        StoreDatabase(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blinkpay.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DatabaseError, match="cannot open database"):
        StoreDatabase(path)


def test_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    database = StoreDatabase(tmp_path / "blinkpay.db")
    try:
        with pytest.raises(RuntimeError), database.transaction() as db:
            db.execute("INSERT INTO audit (event, detail) VALUES ('a', '{}')")
            raise RuntimeError("cut off")
        assert database.db.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
    finally:
        database.close()


def test_migration_to_v2_keeps_ledger_rows_and_allows_voided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    monkeypatch.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS[:1])
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", 1)
    old = StoreDatabase(path)
    old.db.execute(
        "INSERT INTO ledger (id, created_at, day, amount, currency, mode, status, reasons, body)"
        " VALUES ('t1', '2026-11-23T10:00:00Z', '2026-11-23', 250, 'EUR', 'turnstile',"
        " 'approved', '[]', '{}')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        old.db.execute("UPDATE ledger SET status = 'voided'")
    old.db.conn.close()
    monkeypatch.undo()
    database = StoreDatabase(path)
    assert database.schema_version() == SCHEMA_VERSION >= 2
    database.db.execute("UPDATE ledger SET status = 'voided' WHERE id = 't1'")
    rows = database.db.execute("SELECT seq, id, status FROM ledger").fetchall()
    assert rows == [(1, "t1", "voided")]
