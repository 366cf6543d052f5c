"""blinkpay bench match: 1:N search speed, memory and exactness of every index candidate.

The shipped (automatically chosen) index is loaded through the real path (snapshot ->
AES-GCM -> SQLite -> load) in a temporary database; then every candidate index is built
from the same synthetic unit templates (spread like real ones, see make_workload) and
timed on the same queries, interleaved query by query, single-threaded (BLAS limited to
one thread when threadpoolctl is installed, faiss to one OpenMP thread), against exact
top-k computed in float64. Each search is timed cold (caches flushed first: the
terminal's case); then each index is searched with all queries back to back (warm, as a
plain timing loop measures it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device.cli._common import print_json
from device.config import Config
from device.errors import BlinkpayError
from device.store.index_choice import KINDS, SearchIndex, faiss_problem, new_index, resolve
from device.store.keys import provision_keys
from device.store.terminal_store import open_store, store_key_paths
from device.store.updates import encode_vector

HELP = "1:N search speed, memory and exactness"
EMBEDDER = "bench-random-v1"
# Mean cosine of two different people's templates with the shipped embedder (400 LFW
# people, one image each: 0.833). Real templates share a large common direction, which
# packs the top scores close together: the hard case for a quantised shortlist.
COMMON_COSINE = 0.83
MATE_COSINE = 0.75  # of a mated probe's own part with its template's: 0.96 overall
SCORE_TOLERANCE = 0.002  # "exact enough": a tenth of the decision margin (0.02)
# Practical sequential read bandwidth assumed for the Pi estimate (GB/s): Pi 4 LPDDR4,
# Pi 5 LPDDR4X. A search reads every template once, so bytes / bandwidth bounds it below.
PI_BANDWIDTH_GB_S = {"pi4": 4.0, "pi5": 10.0}
EVICT_BYTES = 64 << 20  # read before each cold search: more than this host's L2 and a Pi's caches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--templates", type=int, default=10_000, help="enrolled templates")
    parser.add_argument("--dim", type=int, default=128, help="template dimension")
    parser.add_argument(
        "--queries", type=int, default=300, help="mated probes (as many strangers are added)"
    )
    parser.add_argument("--k", type=int, default=4, help="results per search (candidates+1)")
    parser.add_argument(
        "--common",
        type=float,
        default=COMMON_COSINE,
        help="mean cosine between templates of different people (0: isotropic)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the templates")
    parser.add_argument("--json", action="store_true", help="print JSON")


# ---- data --------------------------------------------------------------------------------


@dataclass
class Workload:
    vectors: np.ndarray  # (n, dim) unit float32
    tokens: list[str]
    probes: np.ndarray  # mated probes first, then strangers
    mates: np.ndarray  # row of each mated probe's template


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _without(rows: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """rows made orthogonal to each direction (one per row, or one for all), unit length."""
    return _unit(rows - (rows * directions).sum(-1, keepdims=True) * directions)


def make_workload(
    templates: int, dim: int, queries: int, seed: int, common: float = COMMON_COSINE
) -> Workload:
    """Templates t = a*c + b*u (c shared, u their own, orthogonal to c; a^2 = common):
    two people's templates are at cosine `common` on average, as a real embedder's are.
    A mated probe's own part is at cosine MATE_COSINE with its template's own part."""
    rng = np.random.default_rng(seed)
    centre = _unit(rng.standard_normal((1, dim)))
    shared, own_share = np.sqrt(common), np.sqrt(1 - common)
    own = _without(rng.standard_normal((templates, dim)), centre)
    mates = rng.choice(templates, size=min(queries, templates), replace=False)
    noise = _without(_without(rng.standard_normal((len(mates), dim)), centre), own[mates])
    mated_own = MATE_COSINE * own[mates] + np.sqrt(1 - MATE_COSINE**2) * noise
    stranger_own = _without(rng.standard_normal((len(mates), dim)), centre)
    vectors = _unit(shared * centre + own_share * own)
    probes = _unit(shared * centre + own_share * np.concatenate([mated_own, stranger_own]))
    tokens = [f"bench-{i:08d}" for i in range(templates)]
    return Workload(vectors, tokens, probes, mates)


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, float64 cosines) of the exact top-k: float32 shortlist, float64 re-score."""
    scores = vectors @ query
    wide = min(len(scores), k + 16)  # float32 rounding cannot reorder rows this far apart
    rows = np.argpartition(-scores, wide - 1)[:wide]
    exact = vectors[rows].astype(np.float64) @ query.astype(np.float64)
    order = np.argsort(-exact, kind="stable")[:k]
    return rows[order], exact[order]


# ---- exactness ---------------------------------------------------------------------------


@dataclass
class Exactness:
    """Each search's top-k against the exact one (float64 cosines)."""

    k: int
    recall: list[float] = field(default_factory=list)
    identical: int = 0  # same tokens in the same order
    within_tolerance: int = 0  # right candidates and scores up to SCORE_TOLERANCE
    max_score_error: float = 0.0

    def add(self, found: list[tuple[str, float]], truth: list[str], true_of: dict) -> None:
        tokens = [t for t, _ in found]
        self.recall.append(len(set(tokens) & set(truth)) / len(truth))
        self.identical += tokens == truth
        errors = [abs(score - true_of[t]) for t, score in found]
        self.max_score_error = max([self.max_score_error, *errors])
        kth = true_of[truth[-1]]
        # A swap with a row whose true score is within the tolerance is harmless.
        self.within_tolerance += bool(
            len(tokens) == len(truth)
            and max(errors) <= SCORE_TOLERANCE
            and all(true_of[t] >= kth - SCORE_TOLERANCE for t in tokens)
        )

    def figures(self) -> dict[str, float]:
        n = len(self.recall)
        return {
            "recall_at_k": round(float(np.mean(self.recall)), 5),
            "identical_top_k": round(self.identical / n, 5),
            "within_tolerance": round(self.within_tolerance / n, 5),
            "max_score_error": float(f"{self.max_score_error:.2g}"),
        }


def true_scores(vectors: np.ndarray, query: np.ndarray, rows: list[int]) -> np.ndarray:
    return vectors[rows].astype(np.float64) @ query.astype(np.float64)


# ---- timing ------------------------------------------------------------------------------


@contextmanager
def single_thread() -> Iterator[int | None]:
    """BLAS limited to one thread (threadpoolctl); yields 1, or None when it cannot be."""
    try:
        from threadpoolctl import threadpool_limits  # only the bench needs it
    except ImportError:
        yield None
        return
    with threadpool_limits(limits=1):
        yield 1


@dataclass
class Candidate:
    kind: str
    index: SearchIndex
    build_s: float
    times: list[float] = field(default_factory=list)  # cold: caches evicted before
    warm_times: list[float] = field(default_factory=list)  # all queries back to back
    mate_hits: int = 0
    exactness: Exactness | None = None


def build_candidates(work: Workload, kinds: list[str], k: int) -> list[Candidate]:
    out = []
    for kind in kinds:
        index = new_index(work.vectors.shape[1], 1, kind)
        started = time.perf_counter()
        index.build(work.tokens, work.vectors)
        out.append(Candidate(kind, index, time.perf_counter() - started))
        out[-1].exactness = Exactness(k)
    return out


class CacheFlusher:
    """Reads a buffer larger than the caches: the next search starts cold, as on the
    terminal, where a search follows a vision pass (and a Pi has 1-2 MB of cache)."""

    def __init__(self, candidates: list[Candidate]) -> None:
        largest = max(c.index.scanned_bytes() for c in candidates)
        self._buffer = np.ones(max(EVICT_BYTES, 2 * largest) // 4, dtype=np.float32)

    def __call__(self) -> None:
        self._buffer.sum()


def _timed(index: SearchIndex, probe: np.ndarray, k: int) -> tuple[list, float]:
    started = time.perf_counter()
    found = index.search(probe, k)
    return found, time.perf_counter() - started


def time_searches(work: Workload, candidates: list[Candidate], k: int) -> None:
    """Every candidate on every query, in rotating order, each search cold; then each
    candidate on all queries back to back (warm: how the issue's figures were taken)."""
    row_of = {t: i for i, t in enumerate(work.tokens)}
    flush = CacheFlusher(candidates)
    for candidate in candidates:  # warm-up: first-touch page faults, lazy imports
        for probe in work.probes[:5]:
            candidate.index.search(probe, k)
    for q, probe in enumerate(work.probes):
        rows, _ = exact_top(work.vectors, probe, k)
        truth = [work.tokens[r] for r in rows]
        mate = work.tokens[work.mates[q]] if q < len(work.mates) else None
        for step in range(len(candidates)):
            candidate = candidates[(q + step) % len(candidates)]
            flush()
            found, seconds = _timed(candidate.index, probe, k)
            candidate.times.append(seconds)
            seen = sorted({*truth, *(t for t, _ in found)})
            true_of = dict(
                zip(seen, true_scores(work.vectors, probe, [row_of[t] for t in seen]), strict=True)
            )
            assert candidate.exactness is not None
            candidate.exactness.add(found, truth, true_of)
            candidate.mate_hits += bool(mate is not None and found and found[0][0] == mate)
    for candidate in candidates:
        candidate.warm_times = [_timed(candidate.index, p, k)[1] for p in work.probes]


def _ms(times: list[float], percent: int) -> float:
    return round(float(np.percentile(times, percent)) * 1e3, 3)


def candidate_figures(candidate: Candidate, templates: int, mated: int) -> dict[str, Any]:
    index = candidate.index
    scanned = index.scanned_bytes()
    assert candidate.exactness is not None
    figures: dict[str, Any] = {
        "search_p50_ms": _ms(candidate.times, 50),
        "search_p99_ms": _ms(candidate.times, 99),
        "warm_p50_ms": _ms(candidate.warm_times, 50),
        "warm_p99_ms": _ms(candidate.warm_times, 99),
        "build_s": round(candidate.build_s, 3),
        "bytes_per_template": round(index.resident_bytes() / templates, 1),
        "scanned_bytes_per_search": scanned,
        **{
            f"{pi}_floor_ms": round(scanned / (gb_s * 1e9) * 1e3, 2)
            for pi, gb_s in PI_BANDWIDTH_GB_S.items()
        },
        **candidate.exactness.figures(),
        "mate_rank1": round(candidate.mate_hits / mated, 4),
        "full_scans": index.full_scans,
    }
    for counter in ("widened", "kernel_mismatches"):
        if hasattr(index, counter):
            figures[counter] = getattr(index, counter)
    return figures


# ---- the real load path ------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load_path(work: Workload) -> dict[str, Any]:
    """Snapshot -> encrypted SQLite -> reopen and load the shipped index; its figures."""
    templates, dim = work.vectors.shape
    account = {"status": "active", "daily_limit": 10_000, "offline_allowance": 1_000}
    snapshot = {
        "shard_id": "bench",
        "version": 1,
        "embedder_version": EMBEDDER,
        "dim": dim,
        "records": [
            {"token": t, "vector_b64": encode_vector(v), "account": account}
            for t, v in zip(work.tokens, work.vectors, strict=True)
        ],
    }
    with tempfile.TemporaryDirectory(prefix="blinkpay-bench-") as tmp:
        config = Config.model_validate({"device": {"data_dir": tmp}})
        provision_keys(store_key_paths(config.store, config.device.data_dir))
        store = open_store(config.store, config.device.data_dir, EMBEDDER, dim)
        started = time.perf_counter()
        result = store.shard.apply_snapshot(snapshot)
        apply_s = time.perf_counter() - started
        store.close()
        del snapshot
        if result.outcome != "applied":
            raise RuntimeError(f"bench snapshot not applied: {result}")
        rss_before = _rss_bytes()
        started = time.perf_counter()
        store = open_store(config.store, config.device.data_dir, EMBEDDER, dim)
        load_s = time.perf_counter() - started
        rss_after = _rss_bytes()
        kind = store.shard.index.kind
        loaded = len(store.shard.index)
        store.close()
        db_bytes = Path(tmp, config.store.db_file).stat().st_size
    if loaded != templates:
        raise RuntimeError(f"bench load: {loaded} of {templates} templates in the index")
    return {
        "shipped": kind,
        "apply_s": round(apply_s, 3),
        "load_s": round(load_s, 3),
        "rss_growth_per_template": round((rss_after - rss_before) / templates, 1),
        "db_bytes_per_template": round(db_bytes / templates, 1),
    }


def bench(
    templates: int, dim: int, queries: int, k: int, seed: int, common: float = COMMON_COSINE
) -> dict[str, Any]:
    work = make_workload(templates, dim, queries, seed, common)
    loaded = load_path(work)
    problem = faiss_problem()
    kinds = [kind for kind in KINDS if kind != "faiss-sq8" or problem is None]
    with single_thread() as blas_threads:
        candidates = build_candidates(work, kinds, k)
        time_searches(work, candidates, k)
    mated = len(work.mates)
    table = {c.kind: candidate_figures(c, templates, mated) for c in candidates}
    shipped = table[loaded["shipped"]]
    return {
        "templates": templates,
        "dim": dim,
        "k": k,
        "queries": len(work.probes),
        "mated_queries": mated,
        "common_cosine": common,
        "mate_cosine": round(common + (1 - common) * MATE_COSINE, 4),
        "threads": 1,
        "blas_threads": blas_threads,  # None: threadpoolctl missing, BLAS used its default
        "auto_choice": resolve("auto"),
        "faiss_problem": problem,
        **loaded,
        "bytes_per_template": shipped["bytes_per_template"],
        "search_p50_ms": shipped["search_p50_ms"],
        "search_p99_ms": shipped["search_p99_ms"],
        "warm_p50_ms": shipped["warm_p50_ms"],
        "baseline_p50_ms": table["float32"]["search_p50_ms"],
        "baseline_p99_ms": table["float32"]["search_p99_ms"],
        "baseline_warm_p50_ms": table["float32"]["warm_p50_ms"],
        "mate_rank1": shipped["mate_rank1"],
        "score_tolerance": SCORE_TOLERANCE,
        "pi_bandwidth_gb_s": PI_BANDWIDTH_GB_S,
        "candidates": table,
    }


def _print_text(figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        if key != "candidates":
            print(f"{key}: {value}")
    columns = list(next(iter(figures["candidates"].values())))
    print("\nkind       " + " ".join(f"{c:>12.12s}" for c in columns))
    for kind, row in figures["candidates"].items():
        print(f"{kind:10s} " + " ".join(f"{row.get(c, ''):>12}" for c in columns))


def run(args: argparse.Namespace) -> int:
    if (
        args.templates < 2
        or args.dim < 3
        or args.queries < 1
        or not 1 <= args.k < args.templates
        or not 0 <= args.common < 1
    ):
        raise BlinkpayError(
            "--templates must be >= 2, --dim >= 3, --queries >= 1, 1 <= --k < --templates, "
            "0 <= --common < 1"
        )
    figures = bench(args.templates, args.dim, args.queries, args.k, args.seed, args.common)
    if args.json:
        print_json(figures)
    else:
        _print_text(figures)
    return 0
