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


def test_offline_allowance_is_consumed_atomically(store: Store) -> None:
    from .conftest import snapshot, unit_vectors

    store.shard.apply_snapshot(snapshot(["user-000"], unit_vectors(1)))
    assert store.ledger.offline_remaining("user-000") == 1000
    assert store.ledger.consume_offline_allowance("user-000", 600)
    assert not store.ledger.consume_offline_allowance("user-000", 600)
    assert store.ledger.offline_remaining("user-000") == 400
    assert not store.ledger.consume_offline_allowance("nobody", 1)


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
