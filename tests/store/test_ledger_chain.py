"""Ledger loss is never silent: the chain and its anchor catch a database that is gone,
emptied, replaced, rolled back, short of a status change, or edited behind the terminal's
back; pruning keeps the chain whole; the signed row carries its place in the chain."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import uuid6

from device.config import Config
from device.store.ledger_chain import LedgerIntegrityError, read_anchor
from device.store.terminal_store import (
    Store,
    check_at_start,
    db_path,
    ledger_anchor_path,
    open_store,
)

from .conftest import DIM, EMBEDDER, SHARD


def _tx(created_at: str = "2026-11-23T10:00:00.000Z") -> dict[str, object]:
    return {
        "id": str(uuid6.uuid7()),
        "created_at": created_at,
        "amount": 250,
        "currency": "EUR",
        "token": "user-1",
        "mode": "turnstile",
    }


def _open(config: Config) -> Store:
    return open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)


def _pay(store: Store, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        tx_id = store.ledger.record(_tx(), "pending", [], sign=lambda doc: "signed")
        store.ledger.set_status(tx_id, "approved", ["approved_online"])
        ids.append(tx_id)
    return ids


def _files(config: Config) -> list[Path]:
    path = db_path(config.store, config.device.data_dir)
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _copy_aside(config: Config, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for path in _files(config):
        if path.exists():
            shutil.copy2(path, folder / path.name)


def _put_back(config: Config, folder: Path) -> None:
    for path in _files(config):
        path.unlink(missing_ok=True)
        if (folder / path.name).exists():
            shutil.copy2(folder / path.name, path)


def test_a_whole_ledger_reaches_its_anchor_and_rows_carry_their_place(
    config: Config, store: Store
) -> None:
    ids = _pay(store, 3)
    head = check_at_start(store)
    anchor = read_anchor(ledger_anchor_path(config.device.data_dir))
    assert anchor is not None and (head.seq, head.link) == (anchor.seq, anchor.link)
    assert head.writes == anchor.writes == 6  # three rows written, three decided
    first, second = (store.ledger.get(tx_id) for tx_id in ids[:2])
    assert first is not None and second is not None
    assert second.body["seq"] == first.body["seq"] + 1
    assert second.body["prev"] != first.body["prev"]  # the chain's link, signed into the row


def test_a_deleted_database_stops_the_terminal(config: Config, store: Store) -> None:
    _pay(store, 2)
    store.close()
    for path in _files(config):
        path.unlink(missing_ok=True)
    with pytest.raises(LedgerIntegrityError, match="is gone"):
        _open(config)


def test_an_emptied_database_stops_the_terminal(config: Config, store: Store) -> None:
    _pay(store, 2)
    store.close()
    for path in _files(config):
        path.unlink(missing_ok=True)
    path = db_path(config.store, config.device.data_dir)
    path.write_bytes(b"")  # 0 bytes: SQLite would take it for a new database
    # refused before a schema is made in it (the file stays as it was found)
    with pytest.raises(LedgerIntegrityError, match=r"is empty \(0 bytes\).*2 rows"):
        _open(config)
    assert path.stat().st_size == 0


def test_a_rolled_back_database_stops_the_terminal(
    config: Config, store: Store, tmp_path: Path
) -> None:
    _pay(store, 2)
    store.close()
    _copy_aside(config, tmp_path / "old")
    later = _open(config)
    _pay(later, 3)
    later.close()
    _put_back(config, tmp_path / "old")
    opened = _open(config)
    try:
        with pytest.raises(LedgerIntegrityError, match="missing"):
            check_at_start(opened)
    finally:
        opened.close()


def test_a_lost_status_change_stops_the_terminal(
    config: Config, store: Store, tmp_path: Path
) -> None:
    """The approval the gate acted on is lost (rows all there, one decision missing)."""
    tx_id = store.ledger.record(_tx(), "pending", [], sign=lambda doc: "signed")
    store.close()
    _copy_aside(config, tmp_path / "pending")
    later = _open(config)
    assert later.ledger.set_status(tx_id, "approved", ["approved_online"])
    later.close()
    _put_back(config, tmp_path / "pending")
    opened = _open(config)
    try:
        with pytest.raises(LedgerIntegrityError, match="ledger writes are missing"):
            check_at_start(opened)
    finally:
        opened.close()


def test_a_row_edited_behind_the_terminals_back_breaks_the_chain(
    config: Config, store: Store
) -> None:
    _pay(store, 3)
    store.close()
    with sqlite3.connect(db_path(config.store, config.device.data_dir)) as conn:
        conn.execute("UPDATE ledger SET amount = 1 WHERE seq = 2")
    opened = _open(config)
    try:
        with pytest.raises(LedgerIntegrityError, match="chain broken at seq 2"):
            check_at_start(opened)
    finally:
        opened.close()


def test_pruning_keeps_the_chain_whole(config: Config, store: Store) -> None:
    old = [
        store.ledger.record(_tx("2026-10-01T10:00:00.000Z"), "pending", [], sign=lambda d: "s")
        for _ in range(3)
    ]
    for tx_id in old[:2]:
        store.ledger.set_status(tx_id, "approved", [])
        store.ledger.mark_acked(tx_id)
    _pay(store, 1)
    assert store.ledger.prune_acked("2026-11-01") == 2  # the third old row is not acked yet
    head = check_at_start(store)
    assert head.rows == 2
    store.close()
    reopened = _open(config)
    try:
        assert check_at_start(reopened).seq == head.seq
    finally:
        reopened.close()
