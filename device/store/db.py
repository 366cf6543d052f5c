"""The one SQLite database: connection settings, schema and its migrations.

Durability over speed: WAL with synchronous=FULL, so a committed ledger row or shard
update survives a power cut; secure_delete so deleted templates are overwritten.
One connection per process, guarded by a lock, because SQLite serialises writers anyway.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from device.errors import BlinkpayError
from device.store.ledger_chain import GENESIS, new_store_id, row_link


class DatabaseError(BlinkpayError):
    """The database file is unusable (newer schema, corrupt, not a database)."""


def _v1(db: Database) -> None:
    db.execute(
        """CREATE TABLE shard (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            shard_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            embedder_version TEXT NOT NULL,
            dim INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )"""
    )
    # Face data only: no account fields, no names.
    db.execute(
        """CREATE TABLE templates (
            token TEXT PRIMARY KEY,
            nonce BLOB NOT NULL,
            ciphertext BLOB NOT NULL
        )"""
    )
    # Account data only: no biometric data.
    db.execute(
        """CREATE TABLE accounts (
            token TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
            daily_limit INTEGER NOT NULL,
            offline_allowance INTEGER NOT NULL,
            offline_used INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )"""
    )
    db.execute(
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            event TEXT NOT NULL,
            detail TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE ledger (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            day TEXT NOT NULL,
            token TEXT,
            amount INTEGER NOT NULL,
            currency TEXT NOT NULL,
            mode TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'declined')),
            reasons TEXT NOT NULL,
            body TEXT NOT NULL,
            acked_at TEXT,
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )"""
    )
    db.execute("CREATE INDEX ledger_unacked ON ledger (seq) WHERE acked_at IS NULL")
    db.execute("CREATE INDEX ledger_token_day ON ledger (token, day)")


def _v2(db: Database) -> None:
    """Ledger status 'voided': a paid ride nobody took, or a vend that failed, stays in the
    ledger and is synced to the host again. SQLite cannot alter a CHECK, so the table is
    rebuilt (same columns, same rows, same sequence numbers)."""
    db.execute(
        """CREATE TABLE ledger_v2 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            day TEXT NOT NULL,
            token TEXT,
            amount INTEGER NOT NULL,
            currency TEXT NOT NULL,
            mode TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('pending', 'approved', 'declined', 'voided')),
            reasons TEXT NOT NULL,
            body TEXT NOT NULL,
            acked_at TEXT,
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )"""
    )
    db.execute("INSERT INTO ledger_v2 SELECT * FROM ledger")
    db.execute("DROP TABLE ledger")
    db.execute("ALTER TABLE ledger_v2 RENAME TO ledger")
    db.execute("CREATE INDEX ledger_unacked ON ledger (seq) WHERE acked_at IS NULL")
    db.execute("CREATE INDEX ledger_token_day ON ledger (token, day)")


def _v3(db: Database) -> None:
    """Wrong-PIN lockouts survive a restart (a power cycle must not buy more guesses)."""
    db.execute(
        """CREATE TABLE pin_lockouts (
            token TEXT PRIMARY KEY,
            failures INTEGER NOT NULL CHECK (failures > 0),
            locked_until REAL NOT NULL  -- wall-clock epoch seconds; 0 = counted, not locked
        )"""
    )


def _v4(db: Database) -> None:
    """The ledger chain (device/store/ledger_chain.py): a link per row, the chain's base and
    the store's id; and a one-row table the terminal writes to test that storage works."""
    db.execute("ALTER TABLE ledger ADD COLUMN link TEXT")
    db.execute(
        """CREATE TABLE ledger_meta (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            store_id TEXT NOT NULL,
            base_seq INTEGER NOT NULL,
            base_link TEXT NOT NULL,
            writes INTEGER NOT NULL DEFAULT 0
        )"""
    )
    rows = db.execute(
        "SELECT seq, id, created_at, amount, currency, mode FROM ledger ORDER BY seq"
    ).fetchall()
    base_seq = rows[0][0] - 1 if rows else 0
    db.execute(
        "INSERT INTO ledger_meta (id, store_id, base_seq, base_link) VALUES (1, ?, ?, ?)",
        [new_store_id(), base_seq, GENESIS],
    )
    link = GENESIS
    for row in rows:
        link = row_link(link, *row)
        db.execute("UPDATE ledger SET link = ? WHERE seq = ?", [link, row[0]])
    db.execute(
        "CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT NOT NULL)"
    )


def _v5(db: Database) -> None:
    """The embedder the shard is migrating to, as its last update said (JSON of
    device.store.updates.Migration; NULL: none)."""
    db.execute("ALTER TABLE shard ADD COLUMN migration TEXT")


def _v6(db: Database) -> None:
    """accounts.offline_used goes: it restarted at 0 with every account record from the
    host, while the host counts a customer's offline spending per terminal per UTC day, so
    a terminal offline twice in a day could approve rows the host then refused. The ledger
    now says what was spent (Ledger.offline_spent), by the host's own rule."""
    db.execute("ALTER TABLE accounts DROP COLUMN offline_used")


# Index i migrates schema version i to i + 1. Append only; never edit a shipped step.
MIGRATIONS: list[Callable[[Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]
SCHEMA_VERSION = len(MIGRATIONS)


def make_private(path: Path, wal: bool = False) -> None:
    """The database (and its WAL and shared-memory files) readable by its owner only,
    whatever the umask of whoever started the process: create it 0600, narrow it if wider."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for each in [path, *([Path(f"{path}-wal"), Path(f"{path}-shm")] if wal else [])]:
        if each.exists() and each.stat().st_mode & 0o077:
            os.chmod(each, 0o600)


class StoreDatabase:
    """The SQLite connection with the terminal's settings and a lock around every use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            make_private(self.path)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db = Database(conn)
            self._configure()
            self._migrate()
            make_private(self.path, wal=True)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot open database {self.path}: {exc}") from None
        except PermissionError as exc:
            raise DatabaseError(f"cannot open database {self.path}: {exc.strerror}") from None
        self.lock = threading.RLock()

    def _configure(self) -> None:
        mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise DatabaseError(f"{self.path}: WAL journal not available (got {mode})")
        # FULL: the WAL is synced at every commit, so a written transaction survives power loss.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA secure_delete=ON")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=5000")

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path} has schema version {current}, newer than this software "
                f"({SCHEMA_VERSION}); upgrade blinkpay"
            )
        for version in range(current, SCHEMA_VERSION):
            with self.db.atomic():
                MIGRATIONS[version](self.db)
                self.db.execute(f"PRAGMA user_version={version + 1}")

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One atomic transaction: all of it is committed, or none of it."""
        with self.lock, self.db.atomic():
            yield self.db

    def integrity_problems(self, quick: bool = False) -> list[str]:
        """PRAGMA integrity_check (quick_check: no index cross-check, for every start)."""
        pragma = "quick_check" if quick else "integrity_check"
        with self.lock:
            rows = self.db.execute(f"PRAGMA {pragma}").fetchall()
        return [row[0] for row in rows if row[0] != "ok"]

    def probe(self) -> None:
        """Commit one small write: raises when the storage cannot take one (disk full, I/O)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO health VALUES (1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
                " ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at"
            )

    def close(self) -> None:
        with self.lock:
            self.db.close()
