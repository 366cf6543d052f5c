"""The host's side of ledger sync: each transaction counts once, a void refunds once, and a
status the terminal did not sign is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.accounts import Accounts
from backend.db import HostDb
from tests.backend.conftest import register_terminals

TX_ID = "0192f0c4-6a53-7cc1-b3f2-5d1e2a3b4c5d"


@pytest.fixture
def accounts(host_db_url: str) -> Iterator[Accounts]:
    db = HostDb(host_db_url)
    host = Accounts(db, b"\x00" * 16, "host-a")
    account = {"status": "active", "daily_limit": 5000, "offline_allowance": 1000}
    with db.transaction() as conn:
        host.upsert(conn, "tok-1", "s1", account, balance=1000, pin=None)
        register_terminals(conn)
    yield host
    db.close()


def _tx(status: str) -> dict[str, object]:
    return {"id": TX_ID, "amount": 250, "token": "tok-1", "status": status}


def test_an_offline_approval_then_its_void_charge_and_refund_once(accounts: Accounts) -> None:
    assert accounts.record_tx("gate-1", _tx("approved"), "approved") == (
        "recorded",
        "",
        "approved",
    )
    assert accounts.record_tx("gate-1", _tx("approved"), "approved")[0] == "duplicate"
    assert accounts.balance("tok-1") == 750
    assert accounts.record_tx("gate-1", _tx("voided"), "voided") == ("recorded", "", "voided")
    assert accounts.balance("tok-1") == 1000
    # the void resent (its ack was lost), and the approval resent late: nothing moves
    assert accounts.record_tx("gate-1", _tx("voided"), "voided")[0] == "duplicate"
    assert accounts.record_tx("gate-1", _tx("approved"), "approved") == (
        "duplicate",
        "",
        "voided",
    )
    assert accounts.balance("tok-1") == 1000


def test_a_status_the_terminal_did_not_sign_is_refused(accounts: Accounts) -> None:
    result, reason, _ = accounts.record_tx("gate-1", _tx("declined"), "approved")
    assert (result, reason) == ("rejected", "status_not_signed")
    assert accounts.balance("tok-1") == 1000
    # a pending record that ended declined (a restart mid-session) moves no money: accepted
    other = {**_tx("pending"), "id": "0192f0c4-6a53-7cc1-b3f2-5d1e2a3b4c5e"}
    assert accounts.record_tx("gate-1", other, "declined")[0] == "recorded"


def test_a_void_of_a_rejected_transaction_refunds_nothing(accounts: Accounts) -> None:
    over = {**_tx("approved"), "amount": 900}  # over the offline floor limit (500)
    assert accounts.record_tx("gate-1", over, "approved")[:2] == ("rejected", "offline_over_floor")
    # the void is recorded (so the terminal's row closes) but nothing was charged to give back
    assert accounts.record_tx("gate-1", _tx("voided"), "voided") == ("recorded", "", "voided")
    assert accounts.balance("tok-1") == 1000


def test_another_terminals_row_with_the_same_id_never_blocks_the_genuine_one(
    accounts: Accounts,
) -> None:
    assert accounts.authorize("gate-1", TX_ID, 250, [{"token": "tok-1"}]).approved
    # gate-2 (registered, same shard) copies the id: its row, void and request are refused
    for status in ("approved", "declined", "voided"):
        result, reason, _ = accounts.record_tx("gate-2", _tx(status), status)
        assert (result, reason) == ("rejected", "foreign_tx")
    other = accounts.authorize("gate-2", TX_ID, 250, [{"token": "tok-1"}])
    assert (other.approved, other.reason, other.token) == (False, "duplicate", None)
    assert accounts.record_tx("gate-1", _tx("approved"), "approved")[0] == "recorded"
    assert accounts.balance("tok-1") == 750
    assert accounts.record_tx("gate-2", _tx("voided"), "voided")[:2] == ("rejected", "foreign_tx")
    assert accounts.balance("tok-1") == 750


def test_offline_rows_stay_within_the_floor_the_allowance_and_the_shard(
    accounts: Accounts, tmp_path: Path
) -> None:
    ids = iter(f"0192f0c4-6a53-7cc1-b3f2-5d1e2a3b4{n:03d}" for n in range(100))

    def offline(amount: int, token: str = "tok-1") -> tuple[str, str]:
        tx = {"id": next(ids), "amount": amount, "token": token, "status": "approved"}
        tx["created_at"] = "2026-11-23T09:30:00.000Z"
        return accounts.record_tx("gate-1", tx, "approved")[:2]

    assert offline(501) == ("rejected", "offline_over_floor")
    assert offline(500) == ("recorded", "")
    assert offline(500) == ("recorded", "")
    assert offline(1) == ("rejected", "offline_allowance")  # 1000 a day at this terminal
    assert offline(10, "tok-nobody") == ("rejected", "unknown_account")
    account = {"status": "active", "daily_limit": 5000, "offline_allowance": 1000}
    with accounts._db.transaction() as conn:
        accounts.upsert(conn, "tok-far", "s2", account, balance=1000, pin=None)
    assert offline(10, "tok-far") == ("rejected", "not_this_shard")
    assert accounts.balance("tok-1") == 0
    assert accounts.balance("tok-far") == 1000
