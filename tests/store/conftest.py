"""Store fixtures: a provisioned data directory, an open store, and update builders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from device.config import Config
from device.store.keys import provision_keys
from device.store.terminal_store import Store, open_store, store_key_paths
from device.store.updates import encode_vector

EMBEDDER = "test-embedder-v1"
DIM = 16
SHARD = "station-7"
ACCOUNT = {"status": "active", "daily_limit": 5000, "offline_allowance": 1000}


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def snapshot(
    tokens: Sequence[str],
    vectors: np.ndarray,
    version: int = 1,
    statuses: Sequence[str] | None = None,
    **header: Any,
) -> dict[str, Any]:
    statuses = statuses or ["active"] * len(tokens)
    extra = {"migration": header["migration"]} if "migration" in header else {}
    return {
        **extra,
        "shard_id": header.get("shard_id", SHARD),
        "version": version,
        "embedder_version": header.get("embedder_version", EMBEDDER),
        "dim": header.get("dim", vectors.shape[1] if len(vectors) else DIM),
        "records": [
            {"token": t, "vector_b64": encode_vector(v), "account": {**ACCOUNT, "status": s}}
            for t, v, s in zip(tokens, vectors, statuses, strict=True)
        ],
    }


def delta(seq: int, ops: list[dict[str, Any]], **header: Any) -> dict[str, Any]:
    return {
        "shard_id": header.get("shard_id", SHARD),
        "seq": seq,
        "embedder_version": header.get("embedder_version", EMBEDDER),
        "dim": header.get("dim", DIM),
        "ops": ops,
    }


def add_op(token: str, vector: np.ndarray, op: str = "add", **account: Any) -> dict[str, Any]:
    return {
        "op": op,
        "token": token,
        "vector_b64": encode_vector(vector),
        "account": {**ACCOUNT, **account},
    }


def make_config(data_dir: Path) -> Config:
    return Config.model_validate({"device": {"data_dir": str(data_dir)}})


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = make_config(tmp_path / "data")
    provision_keys(store_key_paths(cfg.store, cfg.device.data_dir))
    return cfg


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    opened = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    yield opened
    opened.close()


@pytest.fixture
def enrolled(store: Store) -> tuple[Store, list[str], np.ndarray]:
    """A store holding a 20-user snapshot (version 1)."""
    tokens = [f"user-{i:03d}" for i in range(20)]
    vectors = unit_vectors(20)
    result = store.shard.apply_snapshot(snapshot(tokens, vectors))
    assert result.outcome == "applied"
    return store, tokens, vectors
