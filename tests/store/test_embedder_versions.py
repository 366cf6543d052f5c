"""A probe of one embedder is never compared with templates of another, before, during
and after a migration of the shard (docs/matching.md, "Changing the embedder")."""

from __future__ import annotations

import base64

import numpy as np

from device.config import Config
from device.store.terminal_store import Store, open_store
from tests.store.conftest import DIM, EMBEDDER, SHARD, snapshot, unit_vectors

Enrolled = tuple[Store, list[str], np.ndarray]
NEXT = "next-embedder-v2"
HOST_KEY = base64.b64encode(bytes(range(32))).decode()


def test_a_probe_of_another_embedder_finds_nobody(enrolled: Enrolled) -> None:
    store, tokens, vectors = enrolled
    assert store.shard.search(vectors[3], 2, EMBEDDER)[0][0] == tokens[3]
    # The very template, presented as another embedder's vector: not compared at all.
    assert store.shard.search(vectors[3], 2, NEXT) == []
    assert store.shard.refusals()["wrong_probe_embedder"] == 1


def test_a_migrating_shard_keeps_its_embedder_and_names_the_next(enrolled: Enrolled) -> None:
    store, tokens, vectors = enrolled
    migration = {"embedder_version": NEXT, "dim": 24, "host_key": HOST_KEY}
    result = store.shard.apply_snapshot(snapshot(tokens, vectors, version=2, migration=migration))
    assert result.outcome == "applied"
    info = store.shard.info()
    assert info is not None and info.migration is not None
    assert (info.migration.embedder_version, info.migration.dim) == (NEXT, 24)
    assert store.shard.index_embedder == EMBEDDER
    probe_of_next = unit_vectors(1, DIM, seed=9)[0]  # even of the same length
    assert store.shard.search(probe_of_next, 2, NEXT) == []
    assert store.shard.search(vectors[0], 2, EMBEDDER)[0][0] == tokens[0]
    # A snapshot without a migration ends it on the terminal too.
    store.shard.apply_snapshot(snapshot(tokens, vectors, version=3))
    info = store.shard.info()
    assert info is not None and info.migration is None


def test_a_switched_shard_is_refused_then_taken_after_the_device_switches(
    enrolled: Enrolled, config: Config
) -> None:
    store, tokens, _ = enrolled
    switched = unit_vectors(20, 24, seed=4)
    offered = snapshot(tokens, switched, version=2, embedder_version=NEXT, dim=24)
    refused = store.shard.apply_snapshot(offered)
    assert (refused.outcome, refused.reason) == ("refused", "wrong_embedder_version")
    assert store.shard.offered_embedder == (NEXT, 24)
    assert store.shard.index_embedder == EMBEDDER  # the old shard keeps serving until then

    store.shard.expect(NEXT, 24)
    # The old index is gone at once: neither embedder's probe meets the old templates.
    assert store.shard.index_embedder is None
    assert store.shard.search(unit_vectors(1, DIM)[0], 2, EMBEDDER) == []
    assert store.shard.apply_snapshot(offered).outcome == "applied"
    assert store.shard.index_embedder == NEXT
    assert store.shard.search(switched[5], 2, NEXT)[0][0] == tokens[5]
    assert store.shard.search(unit_vectors(1, DIM)[0], 2, EMBEDDER) == []
    store.close()
    reopened = open_store(config.store, config.device.data_dir, NEXT, 24, SHARD)
    try:
        assert reopened.shard.index_embedder == NEXT
        assert reopened.shard.search(switched[7], 1, NEXT)[0][0] == tokens[7]
    finally:
        reopened.close()


def test_a_device_of_the_old_embedder_never_loads_the_new_shard(
    enrolled: Enrolled, config: Config
) -> None:
    store, _, vectors = enrolled
    store.close()
    upgraded = open_store(config.store, config.device.data_dir, NEXT, DIM, SHARD)
    try:
        assert upgraded.shard.index_embedder is None and upgraded.shard.stale_reason
        assert upgraded.shard.search(vectors[1], 2, NEXT) == []
        assert upgraded.shard.search(vectors[1], 2, EMBEDDER) == []
    finally:
        upgraded.close()
