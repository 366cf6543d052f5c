"""The host's side of ledger sync: each transaction counts once, a void refunds once, and a
status the terminal did not sign is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.accounts import Accounts
from backend.db import HostDb

TX_ID = "0192f0c4-6a53-7cc1-b3f2-5d1e2a3b4c5d"


@pytest.fixture
def accounts(host_db_url: str) -> Iterator[Accounts]:
    db = HostDb(host_db_url)
    host = Accounts(db, b"\x00" * 16, "host-a")
    account = {"status": "active", "daily_limit": 5000, "offline_allowance": 1000}
    with db.transaction() as conn:
        host.upsert(conn, "tok-1", "s1", account, balance=1000, pin=None)
    yield host
    db.close()


def _tx(status: str) -> dict[str, object]:
    return {"id": TX_ID, "amount": 250, "token": "tok-1", "status": status}


def test_an_offline_approval_then_its_void_charge_and_refund_once(accounts: Accounts) -> None:
    assert accounts.record_tx("gate-1", _tx("approved"), "approved", True) == (
        "recorded",
        "",
        "approved",
    )
    assert accounts.record_tx("gate-1", _tx("approved"), "approved", True)[0] == "duplicate"
    assert accounts.balance("tok-1") == 750
    assert accounts.record_tx("gate-1", _tx("voided"), "voided", True) == ("recorded", "", "voided")
    assert accounts.balance("tok-1") == 1000
    # the void resent (its ack was lost), and the approval resent late: nothing moves
    assert accounts.record_tx("gate-1", _tx("voided"), "voided", True)[0] == "duplicate"
    assert accounts.record_tx("gate-1", _tx("approved"), "approved", True) == (
        "duplicate",
        "",
        "voided",
    )
    assert accounts.balance("tok-1") == 1000


def test_a_status_the_terminal_did_not_sign_is_refused(accounts: Accounts) -> None:
    result, reason, _ = accounts.record_tx("gate-1", _tx("declined"), "approved", True)
    assert (result, reason) == ("rejected", "status_not_signed")
    assert accounts.balance("tok-1") == 1000
    # a pending record that ended declined (a restart mid-session) moves no money: accepted
    other = {**_tx("pending"), "id": "0192f0c4-6a53-7cc1-b3f2-5d1e2a3b4c5e"}
    assert accounts.record_tx("gate-1", other, "declined", True)[0] == "recorded"


def test_a_void_of_a_rejected_transaction_refunds_nothing(accounts: Accounts) -> None:
    assert accounts.record_tx("gate-1", _tx("approved"), "approved", False)[:2] == (
        "rejected",
        "bad_signature",
    )
    # the void is recorded (so the terminal's row closes) but nothing was charged to give back
    assert accounts.record_tx("gate-1", _tx("voided"), "voided", True) == ("recorded", "", "voided")
    assert accounts.balance("tok-1") == 1000
