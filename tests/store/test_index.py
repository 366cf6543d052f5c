"""The int8-cv2 index: exact top-k over the quantised vectors, removal, upsert, memory."""

from __future__ import annotations

import numpy as np
import pytest

from device.store import index as index_module
from device.store.index import Int8Index

from .conftest import unit_vectors

DIM = 64


def brute_force(index: Int8Index, query: np.ndarray, k: int) -> list[str]:
    """Top-k by float64 dot over the index's own dequantised rows and quantised query."""
    tokens, vectors = index.vectors()
    scale = np.abs(query).max() / 127.0
    quantised = np.rint(query / scale) * scale
    scores = vectors.astype(np.float64) @ quantised
    return [tokens[i] for i in np.argsort(-scores, kind="stable")[:k]]


def built(n: int, threads: int = 1, seed: int = 0) -> tuple[Int8Index, np.ndarray]:
    vectors = unit_vectors(n, DIM, seed)
    index = Int8Index(DIM, threads)
    index.build([f"t{i}" for i in range(n)], vectors)
    return index, vectors


@pytest.mark.parametrize("k", [1, 2, 5])
def test_search_is_the_exact_top_k_over_the_quantised_index(k: int) -> None:
    index, vectors = built(3000)
    queries = unit_vectors(40, DIM, seed=1)
    queries[:20] = vectors[:20] + 0.3 * queries[:20]  # near mates, as real searches are
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for query in queries:
        found = index.search(query, k)
        assert [t for t, _ in found] == brute_force(index, query, k)
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_scores_are_cosines_within_quantisation_error() -> None:
    index, vectors = built(500)
    query = unit_vectors(1, DIM, seed=5)[0]
    found = dict(index.search(query, 5))
    for token, score in found.items():
        assert score == pytest.approx(float(vectors[int(token[1:])] @ query), abs=0.01)


def test_rows_of_very_different_norms_fall_back_to_a_full_scan_and_stay_exact() -> None:
    vectors = unit_vectors(2000, DIM)
    vectors[::2] *= 0.2  # the norm bound is then too loose to settle the candidates
    index = Int8Index(DIM, 1)
    index.build([f"t{i}" for i in range(2000)], vectors)
    for query in unit_vectors(10, DIM, seed=3):
        assert [t for t, _ in index.search(query, 3)] == brute_force(index, query, 3)
    assert index.full_scans > 0


def test_parallel_parts_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_PARALLEL_MIN_ROWS", 100)
    single, _ = built(5000, threads=1)
    double, _ = built(5000, threads=2)
    for query in unit_vectors(20, DIM, seed=8):
        assert double.search(query, 3) == single.search(query, 3)


def test_remove_drops_users_and_overwrites_their_row() -> None:
    index, vectors = built(10)
    assert index.remove(["t3", "t9", "nobody"]) == 2
    assert len(index) == 8 and "t3" not in index and "t9" not in index
    assert index.search(vectors[3], 1)[0][0] != "t3"
    assert index.search(vectors[5], 1)[0][0] == "t5"  # a moved row still finds its owner
    tokens, _ = index.vectors()
    assert sorted(tokens) == sorted(f"t{i}" for i in range(10) if i not in (3, 9))


def test_upsert_replaces_and_appends() -> None:
    index, vectors = built(10)
    fresh = unit_vectors(2, DIM, seed=4)
    index.upsert(["t0", "new"], fresh)
    assert len(index) == 11
    assert index.search(fresh[0], 1)[0][0] == "t0"
    assert index.search(fresh[1], 1)[0][0] == "new"
    assert index.search(vectors[0], 1)[0][0] != "t0"


def test_upsert_beyond_the_code_range_clips_but_still_finds_the_user() -> None:
    index, _ = built(50)
    spike = np.zeros(DIM, np.float32)
    spike[0] = 1.0  # far above the coordinates seen at build
    index.upsert(["spike"], spike[None, :])
    best = index.search(spike, 1)[0]
    assert best[0] == "spike" and best[1] > 0.5


def test_empty_index_and_bad_queries() -> None:
    index = Int8Index(DIM)
    assert index.search(unit_vectors(1, DIM)[0], 2) == []
    index.build(["a"], unit_vectors(1, DIM))
    assert [t for t, _ in index.search(unit_vectors(1, DIM, seed=2)[0], 5)] == ["a"]
    with pytest.raises(ValueError, match="dim"):
        index.search(np.ones(DIM + 1, np.float32), 1)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full(DIM, np.nan, np.float32), 1)
    index.clear()
    assert len(index) == 0 and index.search(unit_vectors(1, DIM)[0], 1) == []


def test_resident_memory_per_template_is_small() -> None:
    vectors = unit_vectors(20_000, 128)
    index = Int8Index(128, 1)
    index.build([f"tok-{i:012d}" for i in range(20_000)], vectors)
    assert index.resident_bytes() / 20_000 < 512
