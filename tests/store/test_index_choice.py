"""Every index candidate against exact float32 top-k, and the automatic choice of one."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from device.config import Config
from device.store import faiss_index, index_choice
from device.store.dense_index import Float32Index
from device.store.index_choice import KINDS, new_index, resolve
from device.store.terminal_store import open_store

from .conftest import EMBEDDER, SHARD, snapshot, unit_vectors

DIM = 128  # the shipped embedder's
N = 4000
K = 4

needs_faiss = pytest.mark.skipif(
    index_choice.faiss_problem() is not None, reason=f"{index_choice.faiss_problem()}"
)
EXACT = [pytest.param("faiss-sq8", marks=needs_faiss), "float32"]


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    scores = vectors.astype(np.float64) @ query.astype(np.float64)
    rows = np.argsort(-scores, kind="stable")[:k]
    return [f"t{r}" for r in rows], scores[rows]


def queries(vectors: np.ndarray, seed: int = 1) -> np.ndarray:
    """Half near mates (as real searches are), half strangers."""
    rows = unit_vectors(40, DIM, seed)
    rows[:20] = vectors[:20] + 0.5 * rows[:20]
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def faiss_on_small_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' indexes are small: make faiss-sq8 use faiss on them all the same."""
    monkeypatch.setattr(faiss_index, "EXACT_BELOW", 0)


def clustered(n: int, seed: int = 0, common: float = 0.83) -> np.ndarray:
    """Templates at cosine `common` to each other on average, as a real embedder's are."""
    centre = unit_vectors(1, DIM, seed=100)
    rows = np.sqrt(common) * centre + np.sqrt(1 - common) * unit_vectors(n, DIM, seed)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def built(kind: str, n: int = N, seed: int = 0, common: float = 0.0):
    vectors = clustered(n, seed, common) if common else unit_vectors(n, DIM, seed)
    index = new_index(DIM, 1, kind)
    index.build([f"t{i}" for i in range(n)], vectors)
    return index, vectors


@pytest.mark.parametrize("common", [0.0, 0.83])
@pytest.mark.parametrize("kind", EXACT)
def test_exact_kinds_return_the_float32_top_k_and_scores(kind: str, common: float) -> None:
    index, vectors = built(kind, common=common)
    assert index.kind == kind
    strangers = clustered(20, seed=7, common=common) if common else unit_vectors(20, DIM, 7)
    for query in np.concatenate([queries(vectors)[:20], strangers]):
        found = index.search(query, K)
        tokens, scores = exact_top(vectors, query, K)
        assert [t for t, _ in found] == tokens
        assert [s for _, s in found] == pytest.approx(scores, abs=1e-5)


def test_int8_cv2_returns_the_float32_top_k_within_its_quantisation_error() -> None:
    index, vectors = built("int8-cv2")
    for query in queries(vectors):
        found = dict(index.search(query, K))
        tokens, scores = exact_top(vectors, query, K)
        true_of = {t: float(vectors[int(t[1:])] @ query) for t in found}
        assert all(abs(found[t] - true_of[t]) < 0.005 for t in found)
        assert all(true_of[t] >= scores[-1] - 0.005 for t in found)  # swaps only near ties
        assert next(iter(found)) == tokens[0] or scores[0] - scores[1] < 0.005


@needs_faiss
def test_faiss_sq8_stays_exact_through_removes_and_upserts() -> None:
    rng = np.random.default_rng(3)
    index, vectors = built("faiss-sq8", 2000)
    reference = Float32Index(DIM)
    tokens = [f"t{i}" for i in range(2000)]
    reference.build(tokens, vectors)
    for step in range(5):
        gone = list(rng.choice(tokens, 40, replace=False))
        fresh = [f"n{step}-{i}" for i in range(30)] + list(rng.choice(tokens, 10, replace=False))
        rows = unit_vectors(40, DIM, seed=10 + step)
        for each in (index, reference):
            assert each.remove(gone) == 40
            each.upsert(fresh, rows)
        tokens = [t for t in tokens if t not in set(gone)] + fresh[:30]
        for query in unit_vectors(10, DIM, seed=20 + step):
            found, expected = index.search(query, K), reference.search(query, K)
            assert [t for t, _ in found] == [t for t, _ in expected]
            assert [s for _, s in found] == pytest.approx([s for _, s in expected], abs=1e-6)
    assert index.tokens() == reference.tokens()
    assert index.scanned_bytes() == len(index) * DIM  # codes mirror the rows, nothing stale
    assert index.kernel_mismatches == 0


@needs_faiss
def test_faiss_sq8_a_vector_beyond_the_code_range_rebuilds_the_codes() -> None:
    index, _ = built("faiss-sq8", 500)
    spike = np.zeros(DIM, np.float32)
    spike[0] = 1.0
    index.upsert(["spike"], spike[None, :])
    assert index.search(spike, 1) == [("spike", pytest.approx(1.0))]
    assert index.search(unit_vectors(1, DIM, seed=9)[0], K)  # still answers the others


@needs_faiss
def test_faiss_sq8_grows_a_short_shortlist_and_stays_exact(monkeypatch) -> None:
    monkeypatch.setattr(faiss_index, "SHORTLIST", 1)
    index, vectors = built("faiss-sq8")
    for query in queries(vectors):
        assert [t for t, _ in index.search(query, K)] == exact_top(vectors, query, K)[0]
    assert index.widened > 0


@needs_faiss
def test_faiss_sq8_a_wrong_kernel_score_falls_back_to_the_exact_scan(monkeypatch) -> None:
    index, vectors = built("faiss-sq8")
    real = index._sq

    class Broken:
        def __getattr__(self, name: str):
            return getattr(real, name)

        def search(self, x: np.ndarray, k: int):
            scores, rows = real.search(x, k)
            return np.zeros_like(scores), rows  # what QT_8bit_direct gave on AVX512-SPR

    monkeypatch.setattr(index, "_sq", Broken())
    query = queries(vectors)[0]
    assert [t for t, _ in index.search(query, K)] == exact_top(vectors, query, K)[0]
    assert index.kernel_mismatches == 1 and index.full_scans == 1


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_handles_empty_and_bad_queries(kind: str) -> None:
    if kind == "faiss-sq8" and index_choice.faiss_problem() is not None:
        pytest.skip("faiss not usable here")
    index = new_index(DIM, 1, kind)
    assert index.search(unit_vectors(1, DIM)[0], 2) == []
    index.build(["a"], unit_vectors(1, DIM))
    assert [t for t, _ in index.search(unit_vectors(1, DIM, seed=2)[0], 5)] == ["a"]
    with pytest.raises(ValueError, match="dim"):
        index.search(np.ones(DIM + 1, np.float32), 1)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full(DIM, np.nan, np.float32), 1)
    index.clear()
    assert len(index) == 0 and index.search(unit_vectors(1, DIM)[0], 1) == []


@pytest.fixture
def no_faiss(monkeypatch: pytest.MonkeyPatch):
    """faiss made unimportable (None in sys.modules makes `import faiss` raise)."""
    monkeypatch.setitem(sys.modules, "faiss", None)
    faiss_index._faiss.cache_clear()
    index_choice.faiss_problem.cache_clear()
    yield
    faiss_index._faiss.cache_clear()
    index_choice.faiss_problem.cache_clear()


def test_auto_falls_back_to_float32_without_faiss(no_faiss: None) -> None:
    assert "not importable" in (index_choice.faiss_problem() or "")
    assert resolve("auto") == "float32"
    assert new_index(DIM).kind == "float32"
    assert new_index(DIM, 1, "faiss-sq8").kind == "float32"  # configured, still serves


def test_the_shard_builds_the_fallback_without_faiss(no_faiss: None, config: Config) -> None:
    store = open_store(config.store, config.device.data_dir, EMBEDDER, 16, SHARD)
    try:
        assert store.shard.apply_snapshot(snapshot(["a", "b"], unit_vectors(2))).outcome == (
            "applied"
        )
        assert store.shard.index.kind == "float32"
        assert store.shard.search(unit_vectors(2)[1], 1)[0][0] == "b"
    finally:
        store.close()


@needs_faiss
def test_faiss_sq8_scans_a_small_index_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_index, "EXACT_BELOW", 5000)
    index, vectors = built("faiss-sq8")

    def no_faiss(*_: object) -> None:
        raise AssertionError("faiss searched")

    monkeypatch.setattr(index._sq, "search", no_faiss)
    query = queries(vectors)[0]
    assert [t for t, _ in index.search(query, K)] == exact_top(vectors, query, K)[0]


@needs_faiss
def test_auto_picks_faiss_sq8_when_faiss_works() -> None:
    assert resolve("auto") == "faiss-sq8"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown index kind"):
        new_index(DIM, 1, "hnsw")


def test_the_config_forces_a_kind(config: Config) -> None:
    config.store.index = "int8-cv2"
    store = open_store(config.store, config.device.data_dir, EMBEDDER, 16, SHARD)
    try:
        assert store.shard.apply_snapshot(snapshot(["a"], unit_vectors(1))).outcome == "applied"
        assert store.shard.index.kind == "int8-cv2"
    finally:
        store.close()
    with pytest.raises(ValueError, match="index"):
        Config.model_validate({"store": {"index": "hnsw"}})
