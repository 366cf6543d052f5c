"""Opening the store from the config: database file, keys, shard and ledger together."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from device.config import Config
from device.errors import BlinkpayError
from device.store.db import StoreDatabase
from device.store.keys import (
    DataKey,
    KeyPaths,
    key_paths,
    load_data_key,
    write_private_file,
)
from device.store.ledger import Ledger
from device.store.shard import TemplateShard

log = logging.getLogger(__name__)


def db_path(config: Config) -> Path:
    return Path(config.device.data_dir) / config.store.db_file


def store_key_paths(config: Config) -> KeyPaths:
    return key_paths(
        config.device.data_dir, config.store.data_key_file, config.store.signing_key_file
    )


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
    config: Config,
    embedder_version: str | None = None,
    dim: int | None = None,
    shard_id: str | None = None,
) -> Store:
    """Open (creating if needed) the database; the data key must exist (`blinkpay provision`).

    embedder_version/dim: what this device's embedder produces; updates for another
    version are refused. None (for db commands) takes whatever the shard holds.
    """
    paths = store_key_paths(config)
    database = StoreDatabase(db_path(config))
    try:
        key = _load_key(database, paths.data_key)
        shard = TemplateShard(
            database,
            key,
            embedder_version,
            dim,
            shard_id,
            config.store.search_threads,
            config.store.index,
        )
    except BaseException:
        database.close()
        raise
    return Store(database, shard, Ledger(database, config.store.outbox_max_rows), paths)


def open_existing_store(config: Config) -> Store:
    """For the db commands: open the store only if the database is already there."""
    path = db_path(config)
    if not path.exists():
        raise BlinkpayError(
            f"no database at {path}: it is made when `blinkpay provision` or the service "
            "first runs (check device.data_dir and store.db_file)"
        )
    return open_store(config)
