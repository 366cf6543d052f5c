"""Versioned migrations: backend/store/migrations/NNNN_name.sql, written in SQLite's types
(PostgreSQL's are substituted, backend/store/postgres.py), applied in order in one
transaction and recorded in `schema_version`. A database made before migrations existed
is adopted by 0001 (every statement there is IF NOT EXISTS)."""

from __future__ import annotations

import re
import time
from importlib import resources

from backend.store.base import Store
from device.errors import BlinkpayError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
)"""


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every shipped migration, in order."""
    found = []
    for item in resources.files("backend.store").joinpath("migrations").iterdir():
        match = _NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if len(set(versions)) != len(versions):
        raise BlinkpayError(f"two migrations share a version: {versions}")
    return found


def migrate(store: Store) -> list[str]:
    """Apply what the database lacks; returns the file names applied (all or none)."""
    applied: list[str] = []
    with store.ddl_transaction() as conn:
        conn.execute(VERSION_TABLE)
        have = {row[0] for row in conn.execute("SELECT version FROM schema_version").fetchall()}
        newest = max(have, default=0)
        shipped = migrations()
        if newest > max((v for v, _, _ in shipped), default=0):
            raise BlinkpayError(
                f"the database is at schema version {newest}, newer than this blinkpay"
                " knows; upgrade blinkpay before running it on this database"
            )
        for version, name, sql in shipped:
            if version in have:
                continue
            store.script(conn, sql)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            applied.append(name)
    return applied


def schema_version(store: Store) -> int:
    rows = store.query("SELECT MAX(version) AS v FROM schema_version")
    return int(rows[0]["v"] or 0) if rows else 0
