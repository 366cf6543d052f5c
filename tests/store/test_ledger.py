"""The transaction ledger and outbox: durable rows, decisions, acknowledgements, caps."""

from __future__ import annotations

import pytest
import uuid6

from device.config import Config
from device.store.ledger import INTERRUPTED, OUTBOX_FULL, Ledger, LedgerError
from device.store.terminal_store import Store, open_store

from .conftest import DIM, EMBEDDER, SHARD


def tx(amount: int = 250, token: str | None = "user-000", **extra: object) -> dict[str, object]:
    return {
        "id": str(uuid6.uuid7()),
        "created_at": "2026-11-23T10:00:00.000Z",
        "amount": amount,
        "currency": "EUR",
        "token": token,
        "mode": "turnstile",
        **extra,
    }


def test_pending_then_decided_then_acked(store: Store) -> None:
    ledger = store.ledger
    tx_id = ledger.write_pending(tx())
    assert ledger.depth() == 1 and ledger.pending_sync() == []  # pending rows do not sync yet
    assert ledger.set_status(tx_id, "approved", ["ok"], body={**tx(), "id": tx_id, "s": 1})
    assert not ledger.set_status(tx_id, "declined")  # decided once
    rows = ledger.pending_sync()
    assert [r.id for r in rows] == [tx_id] and rows[0].status == "approved"
    assert rows[0].reasons == ("ok",) and rows[0].body["s"] == 1
    assert ledger.spent_today("user-000", "2026-11-23") == 250
    assert ledger.mark_acked(tx_id) and not ledger.mark_acked(tx_id)
    assert ledger.depth() == 0 and ledger.pending_sync() == []
    assert ledger.get(tx_id).acked_at is not None  # type: ignore[union-attr]


def test_rows_survive_reopening_and_interrupted_ones_are_declined(
    store: Store, config: Config
) -> None:
    tx_id = store.ledger.write_pending(tx())
    store.close()
    reopened = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    try:
        assert reopened.ledger.recover_interrupted() == [tx_id]
        row = reopened.ledger.get(tx_id)
        assert row is not None and (row.status, row.reasons) == ("declined", (INTERRUPTED,))
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "not-a-uuid"},
        {"id": str(uuid6.uuid7()).upper()},
        {"amount": -1},
        {"amount": True},
        {"created_at": "yesterday"},
        {"token": 5},
        {"reasons": "ok"},
        {"extra": object()},
    ],
)
def test_malformed_transactions_are_refused(store: Store, bad: dict[str, object]) -> None:
    with pytest.raises(LedgerError):
        store.ledger.write_pending({**tx(), **bad})
    assert store.ledger.depth() == 0


def test_duplicate_id_is_refused(store: Store) -> None:
    first = tx()
    store.ledger.write_pending(first)
    with pytest.raises(LedgerError, match="duplicate_tx"):
        store.ledger.write_pending(first)


def test_full_outbox_refuses_new_payments_and_keeps_old_rows(store: Store) -> None:
    ledger = Ledger(store.database, max_rows=2)
    ids = [ledger.write_pending(tx()) for _ in range(2)]
    with pytest.raises(LedgerError) as refused:
        ledger.write_pending(tx())
    assert refused.value.reason == OUTBOX_FULL
    ledger.set_status(ids[0], "approved")
    ledger.mark_acked(ids[0])
    ledger.write_pending(tx())
    assert ledger.depth() == 2


def _settle_offline(store: Store, amount: int, created_at: str) -> tuple[str, bool]:
    tx_id = store.ledger.write_pending(tx(amount=amount, created_at=created_at))
    settled = store.ledger.settle(
        tx_id, "approved", ["approved_offline"], token="user-000", offline=True, sign=_sign
    )
    assert settled is not None and settled.status == "approved"
    return tx_id, settled.allowance_short


def _sign(document: dict) -> str:
    return "signed"


def test_the_offline_allowance_left_is_what_the_days_offline_rows_left(store: Store) -> None:
    """Counted as the host counts it (backend/tx_rules.py): this terminal's approved offline
    rows of the customer on that UTC day; a void gives its amount back."""
    from .conftest import ACCOUNT, delta, snapshot, unit_vectors

    store.shard.apply_snapshot(snapshot(["user-000"], unit_vectors(1)))
    day, morning, evening = "2026-11-23", "2026-11-23T08:00:00.000Z", "2026-11-23T18:00:00.000Z"
    assert store.ledger.offline_remaining("user-000", day) == 1000
    first, short = _settle_offline(store, 600, morning)
    assert not short and store.ledger.offline_remaining("user-000", day) == 400
    online = store.ledger.write_pending(tx(amount=300, created_at=morning))
    store.ledger.settle(online, "approved", [], token="user-000", offline=False, sign=_sign)
    assert store.ledger.offline_remaining("user-000", day) == 400  # online rows do not count
    assert store.ledger.offline_remaining("user-000", "2026-11-24") == 1000  # a new UTC day
    assert store.ledger.offline_remaining("nobody", day) == 0

    # back online: the host restates the account; what was spent that day stays spent
    account = {"op": "account", "token": "user-000", "account": ACCOUNT}
    assert store.shard.apply_delta(delta(2, [account])).outcome == "applied"
    assert store.ledger.offline_remaining("user-000", day) == 400
    _, short = _settle_offline(store, 600, evening)  # offline again the same day
    assert short and store.ledger.offline_remaining("user-000", day) == 0

    store.ledger.settle(first, "voided", ["passage_timeout"], token=None, offline=False, sign=_sign)
    assert store.ledger.offline_remaining("user-000", day) == 400  # the void gave 600 back


def test_prune_forgets_only_old_acknowledged_rows(store: Store) -> None:
    ledger = store.ledger
    old = ledger.write_pending(tx(created_at="2026-11-01T00:00:00Z"))
    kept = ledger.write_pending(tx(created_at="2026-11-01T00:00:00Z"))
    for tx_id in (old, kept):
        ledger.set_status(tx_id, "approved")
    ledger.mark_acked(old)
    assert ledger.prune_acked("2026-11-23") == 1
    assert ledger.get(old) is None and ledger.get(kept) is not None


def test_a_voided_approval_syncs_again_and_stale_acks_do_not_close_it(store: Store) -> None:
    ledger = store.ledger
    document = tx()
    tx_id = ledger.write_pending(document)
    assert ledger.set_status(tx_id, "approved", ["approved_online"], body={**document, "s": 1})
    assert ledger.mark_acked(tx_id, "approved")
    void_body = {**document, "status": "voided", "s": 2}
    assert ledger.void(tx_id, ["approved_online", "passage_timeout"], void_body)
    assert not ledger.void(tx_id, ["again"], void_body)  # only an approval can be voided
    row = ledger.get(tx_id)
    assert row is not None and row.status == "voided" and row.acked_at is None
    assert row.reasons == ("approved_online", "passage_timeout") and row.body["s"] == 2
    assert [r.id for r in ledger.pending_sync()] == [tx_id]  # the host hears of it again
    assert ledger.spent_today("user-000", "2026-11-23") == 0  # a ride not taken is not spent
    assert not ledger.mark_acked(tx_id, "approved")  # the approval's late ack
    assert ledger.mark_acked(tx_id, "voided") and ledger.pending_sync() == []


def test_a_declined_payment_cannot_be_voided(store: Store) -> None:
    document = tx()
    tx_id = store.ledger.write_pending(document)
    assert store.ledger.set_status(tx_id, "declined", ["unknown_face"])
    assert not store.ledger.void(tx_id, ["passage_timeout"], {**document, "status": "voided"})
    with pytest.raises(LedgerError, match="another id"):
        store.ledger.void(tx_id, [], {**tx(), "status": "voided"})
