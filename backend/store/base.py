"""What both backends implement (docs/scaling.md, "The store").

The SQL text is SQLite's with `?` placeholders and standard upserts (`INSERT ...
ON CONFLICT(...) DO UPDATE/NOTHING`); PostgreSQL rewrites the placeholders. A write is
`with store.transaction() as conn:` -- SQLite takes the one writer lock (BEGIN IMMEDIATE),
PostgreSQL runs it SERIALIZABLE; a transaction PostgreSQL aborts as a conflict raises
`Retryable`, and `store.retry(fn, ...)` runs `fn` (which opens its own transaction)
again from the start, so concurrent workers never apply the same change twice."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Sequence[Any]

RETRY_ATTEMPTS = 12


class Retryable(Exception):
    """The database aborted the transaction for a conflict with another; run it again."""


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """The connection a transaction hands out: sqlite3's `execute` shape on both backends,
    and `lock(key)`: until the transaction ends, no other transaction holds the same key
    (PostgreSQL: an advisory lock; SQLite: its one writer already excludes the others)."""

    def execute(self, sql: str, params: Params = ()) -> Cursor: ...

    def lock(self, key: str) -> None: ...


class Store:
    """One connection per process, guarded by `lock` (an RLock: the host's threads share it)."""

    kind = "sqlite"
    url = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def transaction(self) -> AbstractContextManager[Conn]:
        raise NotImplementedError

    def ddl_transaction(self) -> AbstractContextManager[Conn]:
        """The transaction migrations run in (backend/store/migrate.py)."""
        raise NotImplementedError

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Rows as dicts, read outside any write transaction."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def reclaim(self, tables: Sequence[str]) -> None:
        """Leave no copy of deleted rows of `tables` behind in the database's files."""
        raise NotImplementedError

    def retry(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args)` again (with a short random pause) while its transaction conflicts."""
        for attempt in range(RETRY_ATTEMPTS):
            try:
                return fn(*args, **kwargs)
            except Retryable:
                if attempt == RETRY_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0.0, 0.002 * 2 ** min(attempt, 6)))
        raise AssertionError("unreachable")

    def script(self, conn: Conn, sql: str) -> None:
        """A migration file: statements separated by `;` at the end of a line."""
        for statement in split_statements(sql):
            conn.execute(statement)


def split_statements(sql: str) -> Iterator[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    for statement in "\n".join(lines).split(";\n"):
        statement = statement.strip().rstrip(";").strip()
        if statement:
            yield statement


def database_errors() -> tuple[type[Exception], ...]:
    """What either driver raises for a database it cannot use (for one-line errors)."""
    import sqlite3

    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


def open_store(target: str | Path) -> Store:
    """`postgresql://...` (or postgres://), else a SQLite file path (or sqlite:///path)."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from backend.store.postgres import PostgresStore

        return PostgresStore(text)
    from backend.store.sqlite import SqliteStore

    return SqliteStore(Path(text.removeprefix("sqlite:///") if "://" in text else text))
