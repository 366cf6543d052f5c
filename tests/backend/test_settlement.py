"""The host's one settlement rule: the terminal's signed row decides what is charged; an
authorization is a hold that the row settles or that expires into a refund; a late answer
moves no money. Every interleaving of answer, row, repeat and expiry ends the same way."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from backend.accounts import Accounts
from backend.db import HostDb
from backend.settlement import expire_holds
from tests.backend.conftest import register_terminals

TX_ID = "0192f0c4-6a53-7cc1-b3f2-5d1e2a3b4c5d"
START, FARE = 1000, 250


@pytest.fixture
def host(host_db_url: str) -> Iterator[tuple[Accounts, HostDb]]:
    db = HostDb(host_db_url)
    accounts = Accounts(db, b"\x00" * 16, "host-a", hold_expiry_s=60.0)
    account = {"status": "active", "daily_limit": 5000, "offline_allowance": 1000}
    with db.transaction() as conn:
        accounts.upsert(conn, "tok-1", "s1", account, balance=START, pin=None)
        register_terminals(conn)
    yield accounts, db
    db.close()


def _row(status: str, authorization: str = "online") -> dict[str, object]:
    return {
        "id": TX_ID,
        "amount": FARE,
        "token": "tok-1",
        "status": status,
        "authorization": authorization,
    }


def _authorize(accounts: Accounts) -> bool:
    return accounts.authorize("gate-1", TX_ID, FARE, [{"token": "tok-1"}]).approved


def test_an_approval_is_a_hold_that_the_approved_row_turns_into_one_charge(host) -> None:
    accounts, _ = host
    assert _authorize(accounts) and accounts.balance("tok-1") == START - FARE
    accounts.record_tx("gate-1", _row("approved"), "approved")
    accounts.record_tx("gate-1", _row("approved"), "approved")  # a resend
    assert _authorize(accounts)  # a repeated request: the first decision, no second hold
    assert accounts.balance("tok-1") == START - FARE


def test_a_crash_while_the_host_answers_ends_in_a_refund(host) -> None:
    """The host approved, the terminal died and restarted: its row says declined."""
    accounts, _ = host
    assert _authorize(accounts)
    pending_then_declined = {**_row("pending"), "reasons": ["interrupted"]}
    assert accounts.record_tx("gate-1", pending_then_declined, "declined")[0] == "recorded"
    assert accounts.balance("tok-1") == START


def test_a_late_approval_of_an_offline_decline_charges_nothing(host) -> None:
    accounts, _ = host
    accounts.record_tx("gate-1", _row("declined", "offline"), "declined")
    assert _authorize(accounts)  # the host's slow answer comes after the row
    assert accounts.balance("tok-1") == START


def test_a_late_decline_of_an_offline_approval_still_charges_once(host) -> None:
    """No free ride: the gate opened on the offline rules, so the row is charged."""
    accounts, db = host
    with db.transaction() as conn:
        conn.execute("UPDATE accounts SET balance = 100 WHERE token = 'tok-1'")
    assert not _authorize(accounts)  # insufficient funds: no hold
    accounts.record_tx("gate-1", _row("approved", "offline"), "approved")
    assert accounts.balance("tok-1") == 100 - FARE


def test_an_unused_authorization_expires_into_a_refund(host) -> None:
    accounts, db = host
    assert _authorize(accounts)
    with db.transaction() as conn:
        assert expire_holds(conn, now=0.0) == []  # not yet
    with db.transaction() as conn:
        assert expire_holds(conn, now=10**12) == [TX_ID]
    assert accounts.balance("tok-1") == START
    # the row comes after all (a terminal offline for days): charged once, by the row
    accounts.record_tx("gate-1", _row("approved"), "approved")
    with db.transaction() as conn:
        assert expire_holds(conn, now=10**12) == []
    assert accounts.balance("tok-1") == START - FARE


def test_a_rejected_row_moves_no_money_and_leaves_the_hold_to_expire(host) -> None:
    accounts, db = host
    assert _authorize(accounts)
    # another terminal's row with this id: refused, never recorded
    assert accounts.record_tx("gate-2", _row("approved"), "approved")[:2] == (
        "rejected",
        "foreign_tx",
    )
    assert accounts.balance("tok-1") == START - FARE  # still only held
    with db.transaction() as conn:
        expire_holds(conn, now=10**12)
    assert accounts.balance("tok-1") == START


STEPS: dict[str, Callable[[Accounts, HostDb], object]] = {
    "answer": lambda a, _: _authorize(a),
    "row": lambda a, _: a.record_tx("gate-1", _row("approved"), "approved"),
    "repeat_row": lambda a, _: a.record_tx("gate-1", _row("approved"), "approved"),
    "void": lambda a, _: a.record_tx("gate-1", _row("voided"), "voided"),
    "expiry": lambda _, db: _expire(db),
}


def _expire(db: HostDb) -> None:
    with db.transaction() as conn:
        expire_holds(conn, now=10**12)


@pytest.mark.parametrize("order", list(itertools.permutations(STEPS)))
def test_every_interleaving_ends_with_the_rows_final_status(order, host) -> None:
    """Answer, approved row, its resend, its void and hold expiry in any order: the row's
    final status (voided: the terminal re-signed it so) decides, and only it."""
    accounts, db = host
    for step in order:
        STEPS[step](accounts, db)
    assert accounts.balance("tok-1") == START, order


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["answer", "row", "repeat_row", "expiry"]))
)
def test_every_interleaving_without_a_void_charges_once(order, host) -> None:
    accounts, db = host
    for step in order:
        STEPS[step](accounts, db)
    assert accounts.balance("tok-1") == START - FARE, order
