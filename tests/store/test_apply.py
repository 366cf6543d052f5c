"""Applying snapshots and deltas: whole or nothing, sequencing, refusals with reasons."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from device.config import Config
from device.core.config import MatchConfig
from device.core.match import decide
from device.store.terminal_store import Store, open_store

from .conftest import DIM, EMBEDDER, SHARD, add_op, delta, snapshot, unit_vectors

Enrolled = tuple[Store, list[str], np.ndarray]


def state(store: Store) -> tuple[Any, ...]:
    """Everything an update may change: shard row, templates, accounts, index contents."""
    db = store.database.db
    tokens, vectors = store.shard.index.vectors()
    order = np.argsort(tokens)
    return (
        db.execute(
            "SELECT shard_id, version, last_seq, embedder_version, dim FROM shard"
        ).fetchall(),
        db.execute("SELECT token, nonce, ciphertext FROM templates ORDER BY token").fetchall(),
        db.execute("SELECT * FROM accounts ORDER BY token").fetchall(),
        [tokens[i] for i in order],
        vectors[order].tobytes(),
    )


def test_snapshot_loads_the_index_and_survives_reopening(
    enrolled: Enrolled, config: Config
) -> None:
    store, tokens, vectors = enrolled
    assert len(store.shard.index) == 20
    best = store.shard.search(vectors[7], 2)
    assert best[0][0] == tokens[7] and best[0][1] == pytest.approx(1.0, abs=0.01)
    store.close()
    reopened = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    try:
        assert reopened.shard.search(vectors[7], 1)[0][0] == tokens[7]
        info = reopened.shard.info()
        assert info is not None and (info.version, info.dim) == (1, DIM)
    finally:
        reopened.close()


def test_delta_ops_change_database_and_index_together(enrolled: Enrolled) -> None:
    store, tokens, vectors = enrolled
    shard = store.shard
    fresh = unit_vectors(2, seed=9)
    result = shard.apply_delta(
        delta(
            2,
            [
                add_op("new-1", fresh[0]),
                add_op(tokens[0], fresh[1], op="update"),
                {"op": "suspend", "token": tokens[1]},
                {"op": "revoke", "token": tokens[2]},
                {"op": "delete", "token": tokens[3]},
                {
                    "op": "account",
                    "token": tokens[4],
                    "account": {"status": "active", "daily_limit": 1, "offline_allowance": 7},
                },
            ],
        )
    )
    assert (result.outcome, result.version, result.changed) == ("applied", 2, 6)
    assert shard.search(fresh[0], 1)[0][0] == "new-1"
    assert shard.search(fresh[1], 1)[0][0] == tokens[0]
    for gone in tokens[1:4]:
        assert gone not in shard.index
    assert shard.account(tokens[1]).status == "suspended"  # type: ignore[union-attr]
    assert shard.account(tokens[2]).status == "revoked"  # type: ignore[union-attr]
    assert shard.account(tokens[3]) is None
    assert shard.account(tokens[4]).offline_allowance == 7  # type: ignore[union-attr]
    assert len(shard.index) == 20 + 1 - 3
    # Reactivation brings the stored template back into the index.
    assert shard.apply_delta(delta(3, [{"op": "reactivate", "token": tokens[1]}])).outcome == (
        "applied"
    )
    assert shard.search(vectors[1], 1)[0][0] == tokens[1]


def test_revoked_user_no_longer_matches_at_once(enrolled: Enrolled) -> None:
    store, tokens, vectors = enrolled
    config = MatchConfig()
    assert decide(store.shard.search(vectors[5], config.candidates + 1), config).token == tokens[5]
    store.shard.apply_delta(delta(2, [{"op": "revoke", "token": tokens[5]}]))
    decision = decide(store.shard.search(vectors[5], config.candidates + 1), config)
    # gone from the search: not the match, not even a candidate the PIN could pick (these
    # 16-D test vectors may still land near someone else at MobileFaceNet's thresholds)
    assert decision.token != tokens[5] and tokens[5] not in decision.candidates


def test_delete_really_deletes(enrolled: Enrolled, config: Config) -> None:
    store, tokens, _ = enrolled
    ciphertext = store.database.db.execute(
        "SELECT ciphertext FROM templates WHERE token = ?", [tokens[6]]
    ).fetchone()[0]
    assert store.shard.apply_delta(delta(2, [{"op": "delete", "token": tokens[6]}])).outcome == (
        "applied"
    )
    assert tokens[6] not in store.shard.index
    store.database.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    assert ciphertext not in (config.device.data_dir / config.store.db_file).read_bytes()


def test_duplicate_sequence_is_ignored_and_changes_nothing(enrolled: Enrolled) -> None:
    store, tokens, _ = enrolled
    assert store.shard.apply_delta(delta(2, [{"op": "suspend", "token": tokens[0]}])).outcome == (
        "applied"
    )
    before = state(store)
    replay = store.shard.apply_delta(delta(2, [{"op": "delete", "token": tokens[1]}]))
    older = store.shard.apply_delta(delta(1, [{"op": "delete", "token": tokens[1]}]))
    assert (replay.outcome, older.outcome, replay.version) == ("duplicate", "duplicate", 2)
    assert state(store) == before
    assert store.shard.outcomes()["duplicate"] == 2


def test_gap_asks_for_a_snapshot_and_changes_nothing(enrolled: Enrolled) -> None:
    store, tokens, _ = enrolled
    before = state(store)
    result = store.shard.apply_delta(delta(3, [{"op": "delete", "token": tokens[0]}]))
    assert (result.outcome, result.version) == ("needs_snapshot", 1)
    assert state(store) == before


def test_delta_before_any_snapshot_needs_a_snapshot(store: Store) -> None:
    result = store.shard.apply_delta(delta(1, [add_op("a", unit_vectors(1)[0])]))
    assert result.outcome == "needs_snapshot"
    assert store.shard.info() is None


def test_older_snapshot_is_ignored_newer_replaces_everything(enrolled: Enrolled) -> None:
    store, tokens, _ = enrolled
    before = state(store)
    assert store.shard.apply_snapshot(snapshot(tokens[:2], unit_vectors(2, seed=4))).outcome == (
        "duplicate"
    )
    assert state(store) == before
    vectors = unit_vectors(3, seed=5)
    result = store.shard.apply_snapshot(
        snapshot(["x", "y", "z"], vectors, version=9, statuses=["active", "suspended", "active"])
    )
    assert (result.outcome, result.version) == ("applied", 9)
    assert sorted(store.shard.index.tokens()) == ["x", "z"]
    assert store.database.db.execute("SELECT count(*) FROM templates").fetchone()[0] == 3
    # The next delta continues from the snapshot's version.
    assert store.shard.apply_delta(delta(10, [{"op": "revoke", "token": "x"}])).outcome == (
        "applied"
    )


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()


NAN = np.full(DIM, np.nan, dtype=np.float32)
LONG = np.full(DIM, 1.0, dtype=np.float32)  # norm 4: not normalised
GOOD = unit_vectors(1, seed=3)[0]


def _bad_add(vector_b64: Any) -> dict[str, Any]:
    op = add_op("new-9", GOOD)
    op["vector_b64"] = vector_b64
    return op


BAD_DELTAS: list[tuple[str, dict[str, Any] | Any]] = [
    ("wrong_embedder_version", delta(2, [add_op("n", GOOD)], embedder_version="other-v2")),
    ("wrong_dim", delta(2, [add_op("n", unit_vectors(1, dim=DIM * 2)[0])], dim=DIM * 2)),
    ("wrong_dim", delta(2, [_bad_add(_b64(unit_vectors(1, dim=DIM + 1)[0]))])),
    ("non_finite_vector", delta(2, [_bad_add(_b64(NAN))])),
    ("non_normalised_vector", delta(2, [_bad_add(_b64(LONG))])),
    ("wrong_shard", delta(2, [add_op("n", GOOD)], shard_id="elsewhere")),
    ("malformed", "not a dict"),
    ("malformed", delta(2, [])),
    ("malformed", {**delta(2, [add_op("n", GOOD)]), "seq": "2"}),
    ("malformed", {**delta(2, [add_op("n", GOOD)]), "extra": 1}),
    ("malformed", delta(2, [_bad_add("***not base64***")])),
    ("malformed", delta(2, [{"op": "explode", "token": "n"}])),
    ("malformed", delta(2, [{"op": "revoke", "token": "has space"}])),
    ("malformed", delta(2, [{"op": "revoke", "token": "n", "vector_b64": ""}])),
    ("malformed", delta(2, [{"op": "revoke", "token": "a"}, {"op": "delete", "token": "a"}])),
    ("malformed", delta(2, [{**add_op("n", GOOD), "account": {"status": "vip"}}])),
    ("unknown_token", delta(2, [add_op("n", GOOD), {"op": "revoke", "token": "ghost"}])),
    ("token_exists", delta(2, [add_op("n", GOOD), add_op("user-000", GOOD)])),
]


@pytest.mark.parametrize(("reason", "update"), BAD_DELTAS)
def test_bad_delta_is_refused_with_a_counted_reason_and_changes_nothing(
    enrolled: Enrolled, reason: str, update: Any
) -> None:
    store, _, _ = enrolled
    before = state(store)
    result = store.shard.apply_delta(update)
    assert (result.outcome, result.reason, result.version) == ("refused", reason, 1)
    assert result.detail
    assert state(store) == before
    assert store.shard.refusals() == {reason: 1}
    audit = store.database.db.execute("SELECT event, detail FROM audit ORDER BY id DESC").fetchone()
    assert audit[0] == "delta_refused" and reason in audit[1]
    # The same sequence number still applies once a good delta arrives.
    assert store.shard.apply_delta(delta(2, [add_op("n", GOOD)])).outcome == "applied"


@pytest.mark.parametrize(
    ("reason", "changes"),
    [
        ("wrong_embedder_version", {"embedder_version": "other-v2"}),
        ("wrong_dim", {"dim": DIM + 1}),
        ("malformed", {"records": "nope"}),
        ("malformed", {"version": -1}),
    ],
)
def test_bad_snapshot_is_refused_and_changes_nothing(
    enrolled: Enrolled, reason: str, changes: dict[str, Any]
) -> None:
    store, tokens, vectors = enrolled
    before = state(store)
    result = store.shard.apply_snapshot({**snapshot(tokens, vectors, version=5), **changes})
    assert (result.outcome, result.reason) == ("refused", reason)
    assert state(store) == before
    assert store.shard.refusals() == {reason: 1}


def test_snapshot_with_a_nan_vector_is_refused_whole(enrolled: Enrolled) -> None:
    store, tokens, vectors = enrolled
    before = state(store)
    bad = snapshot(tokens, vectors, version=5)
    bad["records"][-1]["vector_b64"] = _b64(NAN)
    result = store.shard.apply_snapshot(bad)
    assert (result.outcome, result.reason) == ("refused", "non_finite_vector")
    assert state(store) == before


def test_device_of_another_embedder_refuses_the_shard_and_reports_stale(
    enrolled: Enrolled, config: Config
) -> None:
    store, tokens, vectors = enrolled
    store.close()
    upgraded = open_store(config.store, config.device.data_dir, "test-embedder-v2", DIM, SHARD)
    try:
        assert len(upgraded.shard.index) == 0
        assert upgraded.shard.stale_reason and "needs a snapshot" in upgraded.shard.stale_reason
        assert upgraded.shard.apply_delta(delta(2, [add_op("n", GOOD)])).reason == (
            "wrong_embedder_version"
        )
        fresh = snapshot(tokens, vectors, version=1, embedder_version="test-embedder-v2")
        assert upgraded.shard.apply_snapshot(fresh).outcome == "applied"
        assert upgraded.shard.search(vectors[2], 1)[0][0] == tokens[2]
    finally:
        upgraded.close()
