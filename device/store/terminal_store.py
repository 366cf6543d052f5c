"""Opening the store: database file, keys, shard and ledger together, from the store's own
settings and the data directory they are relative to."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from device.crypto.signing import write_private_file
from device.errors import BlinkpayError
from device.store.config import StoreConfig
from device.store.db import StoreDatabase
from device.store.keys import DataKey, KeyPaths, key_paths, load_data_key
from device.store.ledger import Ledger
from device.store.ledger_chain import (
    ANCHOR_FILE,
    ChainHead,
    LedgerIntegrityError,
    read_anchor,
)
from device.store.shard import TemplateShard

log = logging.getLogger(__name__)


def db_path(settings: StoreConfig, data_dir: Path) -> Path:
    return Path(data_dir) / settings.db_file


def store_key_paths(settings: StoreConfig, data_dir: Path) -> KeyPaths:
    return key_paths(data_dir, settings.data_key_file, settings.signing_key_file)


def _pending_key_path(path: Path) -> Path:
    return path.with_name(path.name + ".new")


def _stored_key_id(database: StoreDatabase) -> str | None:
    row = database.db.execute("SELECT key_id FROM shard WHERE id = 1").fetchone()
    return row[0] if row else None


def _load_key(database: StoreDatabase, path: Path) -> DataKey:
    """The data key; finishes a rekey that was cut off between commit and key-file rename."""
    pending = _pending_key_path(path)
    stored = _stored_key_id(database)
    if pending.exists():
        new = load_data_key(pending)
        if stored == new.key_id:
            os.replace(pending, path)
            log.warning("finished an interrupted rekey: %s now holds the new key", path)
            return new
        pending.unlink()  # the rekey transaction never committed: the old key is current
    return load_data_key(path)


@dataclass
class Store:
    database: StoreDatabase
    shard: TemplateShard
    ledger: Ledger
    key_paths: KeyPaths

    def close(self) -> None:
        self.database.close()

    def rekey(self) -> int:
        """New data key: written aside, every template re-encrypted in one transaction,
        then the key file replaced. A crash at any point leaves a readable store."""
        pending = _pending_key_path(self.key_paths.data_key)
        new = DataKey.generate()
        write_private_file(pending, new.key, overwrite=True)
        count = self.shard.rekey(new)
        os.replace(pending, self.key_paths.data_key)
        return count


def open_store(
    settings: StoreConfig,
    data_dir: Path,
    embedder_version: str | None = None,
    dim: int | None = None,
    shard_id: str | None = None,
) -> Store:
    """Open (creating if needed) the database; the data key must exist (`blinkpay provision`).

    embedder_version/dim: what this device's embedder produces; updates for another
    version are refused. None (for db commands) takes whatever the shard holds.
    """
    paths = store_key_paths(settings, data_dir)
    anchor_path = ledger_anchor_path(data_dir)
    anchor = read_anchor(anchor_path)
    path = db_path(settings, data_dir)
    if anchor is not None and anchor.store_id is not None:
        lost = "is gone" if not path.exists() else "is empty (0 bytes)" if _empty(path) else ""
        if lost:
            raise LedgerIntegrityError(
                f"the database {path} {lost}, but this terminal's ledger was written there "
                f"({anchor.seq} rows); it will not start on an empty ledger: restore the file "
                "or run `blinkpay db recover` (docs/reliability.md)"
            )
    database = StoreDatabase(path)
    try:
        key = _load_key(database, paths.data_key)
        shard = TemplateShard(
            database,
            key,
            embedder_version,
            dim,
            shard_id,
            settings.search_threads,
            settings.index,
        )
    except BaseException:
        database.close()
        raise
    ledger = Ledger(database, settings.outbox_max_rows, anchor_path)
    return Store(database, shard, ledger, paths)


def ledger_anchor_path(data_dir: Path) -> Path:
    return Path(data_dir) / ANCHOR_FILE


def check_at_start(store: Store) -> ChainHead:
    """Before the terminal takes a payment: the file is sound (quick_check) and the ledger
    chain is whole and reaches its anchor; LedgerIntegrityError otherwise."""
    problems = store.database.integrity_problems(quick=True)
    if problems:
        raise LedgerIntegrityError(
            f"the database {store.database.path} is damaged ({'; '.join(problems[:3])}); "
            "see docs/reliability.md, `blinkpay db recover`"
        )
    return store.ledger.verify_chain()


def _empty(path: Path) -> bool:
    """A database file of 0 bytes with no WAL holding its pages: no schema, no rows."""
    wal = path.with_name(path.name + "-wal")
    try:
        return path.stat().st_size == 0 and (not wal.exists() or wal.stat().st_size == 0)
    except OSError:
        return False


def open_existing_store(settings: StoreConfig, data_dir: Path) -> Store:
    """For the db commands: open the store only if the database is already there, and
    never make a schema in an emptied file (that would hide a lost ledger)."""
    path = db_path(settings, data_dir)
    if not path.exists():
        raise BlinkpayError(
            f"no database at {path} yet: the service makes it when it first starts "
            "(systemctl start blinkpay); check device.data_dir and store.db_file"
        )
    if _empty(path):
        raise LedgerIntegrityError(
            f"the database {path} is empty (0 bytes): its ledger and templates are gone; "
            "nothing was written to it. Restore the file or run `blinkpay db recover` "
            "(docs/reliability.md)"
        )
    return open_store(settings, data_dir)
