"""`blinkpay db recover`: a lost ledger comes back from the host's signed copy, every synced
row with the status the host settled; a whole ledger, a forged or foreign export are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import uuid6
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.accounts import Accounts
from backend.db import HostDb
from backend.ledger_export import ledger_export
from device.cli import main
from device.config import load_config
from device.crypto.signing import public_pem
from device.provisioning import provision
from device.store.ledger_chain import LedgerIntegrityError
from device.store.terminal_store import check_at_start, db_path, open_store

DEVICE = "gate-rec"


@pytest.fixture
def terminal(tmp_path: Path) -> tuple[Path, Ed25519PrivateKey]:
    host_key = Ed25519PrivateKey.generate()
    (tmp_path / "host.pub").write_bytes(public_pem(host_key.public_key()))
    sections = {
        "device": {"id": DEVICE, "data_dir": str(tmp_path / "data")},
        "hardware": {"backend": "sim"},
        "mqtt": {
            "url": "mqtt://127.0.0.1:1",
            "backend_public_key_file": str(tmp_path / "host.pub"),
        },
    }
    return provision(tmp_path / "config.toml", sections).config_path, host_key


def _document(amount: int) -> dict[str, object]:
    return {
        "id": str(uuid6.uuid7()),
        "created_at": "2026-11-29T10:00:00.000Z",
        "amount": amount,
        "currency": "EUR",
        "token": "cust-1",
        "mode": "turnstile",
        "reasons": ["approved_online"],
    }


def _host_copy(tmp_path: Path, key: Ed25519PrivateKey, device: str = DEVICE) -> Path:
    db = HostDb(tmp_path / "host.db")
    accounts = Accounts(db, b"\x00" * 16, "host-a")
    with db.transaction() as conn:  # the terminal's customer, of the terminal's shard
        conn.execute(
            "INSERT INTO devices (device_id, public_key_pem, home_shard) VALUES (?, ?, 's1')",
            (device, "-----BEGIN PUBLIC KEY-----"),
        )
        account = {"status": "active", "daily_limit": 10_000, "offline_allowance": 1000}
        accounts.upsert(conn, "cust-1", "s1", account, balance=10_000, pin=None)
    for amount, status in ((250, "approved"), (300, "declined"), (400, "approved")):
        document = {**_document(amount), "status": status}
        if status == "approved":  # backed by the host's own online approval
            accounts.authorize(device, str(document["id"]), amount, [{"token": "cust-1"}])
        accounts.record_tx(device, document, status)
    out = tmp_path / "export.json"
    out.write_text(json.dumps(ledger_export(db, device, key)))
    db.close()
    return out


def test_a_lost_ledger_comes_back_from_the_hosts_copy(
    terminal: tuple[Path, Ed25519PrivateKey], tmp_path: Path, capsys
) -> None:
    config_path, host_key = terminal
    config = load_config(config_path, env={})
    store = open_store(config.store, config.device.data_dir)
    check_at_start(store)  # as every start does: the anchor now names this store
    store.close()
    for path in db_path(config.store, config.device.data_dir).parent.glob("blinkpay.db*"):
        path.unlink()
    with pytest.raises(LedgerIntegrityError):
        open_store(config.store, config.device.data_dir)
    export = _host_copy(tmp_path, host_key)
    argv = ["db", "recover", "--config", str(config_path), "--from-host-export", str(export)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["restored"] == {"approved": 2, "declined": 1} and report["moved_aside"]
    store = open_store(config.store, config.device.data_dir)
    try:
        head = check_at_start(store)  # whole again, with a new anchor
        assert head.rows == 3 and store.ledger.depth() == 0  # all already at the host
        assert store.ledger.spent_today("cust-1", "2026-11-29") == 650
    finally:
        store.close()
    assert main(argv) == 1  # now whole: nothing to recover
    assert "nothing to recover" in capsys.readouterr().err


def test_an_export_not_signed_by_the_host_or_for_another_terminal_is_refused(
    terminal: tuple[Path, Ed25519PrivateKey], tmp_path: Path, capsys
) -> None:
    config_path, host_key = terminal
    forged = _host_copy(tmp_path, Ed25519PrivateKey.generate())
    argv = ["db", "recover", "--config", str(config_path), "--from-host-export", str(forged)]
    assert main(argv) == 1 and "not a ledger export signed by this host" in capsys.readouterr().err
    (tmp_path / "host.db").unlink()
    other = _host_copy(tmp_path, host_key, device="gate-other")
    argv[-1] = str(other)
    assert main(argv) == 1 and "not this terminal" in capsys.readouterr().err
