"""faiss 8-bit scalar-quantised shortlist + exact float32 re-scoring: exact top-k, 4x less scan.

Why: a search is memory-bound (one pass over every template). faiss's SQ8 scan
(`QT_8bit_uniform`: one value range for every coordinate) reads 1 byte per coordinate
instead of 4 and is SIMD-decoded, so it beats a float32 scan on x86 and on a Pi, whose
memory bandwidth is the limit. The shortlist is then re-scored against the float32 rows
and a bound proves the result exact: every row's SQ8 score is within R = max row
quantisation error (|x - decode(encode(x))|, |query| = 1) of its true cosine, so once the
k-th re-scored cosine beats the lowest shortlisted SQ8 score + R, no row left out can
rank in the top k; otherwise the shortlist grows, and at last a full float32 scan runs.
Scores are the float32 cosines, as the brute force gives them. The codes hold each row
minus the rows' mean: face templates share a large common part, and coding only the rest
makes the code step, so R, and so the shortlist needed, smaller.

Not `QT_8bit_direct(_signed)`: in faiss-cpu 1.15.1 its inner-product search returns 0
for every row on an AVX512-SPR host. So `probe()` checks faiss's ranking and scores once
before the automatic choice picks it, and every search checks the shortlist's scores
against the exact ones (off their bound: counted, and a full float32 scan answers).

faiss is imported lazily: the package imports (and falls back to float32) without it.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

import numpy as np

from device.store.dense_index import Float32Index, top_k

log = logging.getLogger(__name__)

SHORTLIST = 64  # first candidate count (x4 per retry): at 100k realistic rows (bench match)
# 64 settled all 600 searches, 32 needed a second scan for 6 % of them
EXACT_BELOW = 4096  # rows: below this a plain float32 scan is faster (bench match, 1k-30k)
_BLOCK = 8192  # rows encoded at a time
_SLACK = 1e-5  # float32 rounding of faiss's and numpy's dot products


@functools.cache
def _faiss() -> Any:
    # faiss's loader logs each SIMD build it tries at INFO ("Could not load library with
    # AVX512 support"): it reads like an error and is not one.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss  # optional dependency, imported on first use

    # One query never needs OpenMP threads; idle spinning ones would steal the vision cores.
    faiss.omp_set_num_threads(1)
    return faiss


def code_limit(peak: float, dim: int) -> float:
    """The coordinate magnitude that maps to the last code: the largest seen (`peak`), with
    headroom (a later row beyond it rebuilds the codes). None seen: a unit vector's."""
    return 1.05 * peak if peak > 0 else 4.0 / math.sqrt(dim)


class FaissSq8Index(Float32Index):
    kind = "faiss-sq8"

    def __init__(self, dim: int, threads: int = 1) -> None:
        self._limit = 1.0
        self._centre = np.zeros(dim, np.float32)  # the rows' mean when the codes were built
        self._residual = 0.0  # max |(x - centre) - decode(code)| over the rows ever encoded
        self._sq: Any = None
        super().__init__(dim, threads)
        self.widened = 0  # searches whose shortlist had to grow
        self.kernel_mismatches = 0  # shortlist scores off their bound: faiss kernel broken
        self._rows_rebuilt()

    # ---- mirroring the float32 matrix in SQ8 codes ----------------------------------------

    def _note_residual(self, vectors: np.ndarray, decoded: np.ndarray) -> None:
        if len(vectors):
            worst = float(np.linalg.norm(vectors - decoded, axis=1).max())
            self._residual = max(self._residual, worst)

    def _append(self, centred: np.ndarray) -> None:
        start = self._sq.ntotal
        self._sq.add(centred)  # (add_sa_codes is not in faiss-cpu 1.9, the oldest aarch64)
        self._note_residual(centred, self._sq.reconstruct_n(start, len(centred)))

    def _codes(self) -> np.ndarray:
        """A writable view of the codes faiss holds (rows x dim bytes); valid until an add."""
        faiss = _faiss()
        n = self._sq.ntotal
        return faiss.rev_swig_ptr(self._sq.codes.data(), n * self.dim).reshape(n, self.dim)

    def _rows_rebuilt(self) -> None:
        faiss = _faiss()
        if self._sq is not None and self._sq.ntotal:
            self._codes().fill(0)
        # Face embeddings share a large common component: coding only what differs from
        # the mean shrinks the code step, hence R, hence the shortlist needed.
        n = len(self._vectors)
        self._centre = (
            self._vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
            if n
            else np.zeros(self.dim, np.float32)
        )
        blocks = [slice(start, start + _BLOCK) for start in range(0, n, _BLOCK)]
        peak = max((float(np.abs(self._centred(b)).max()) for b in blocks), default=0.0)
        self._limit = code_limit(peak, self.dim)
        self._residual = 0.0
        self._sq = faiss.IndexScalarQuantizer(
            self.dim, faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_INNER_PRODUCT
        )
        # Training on +-limit fixes the one shared range: symmetric, with headroom.
        bounds = np.full((2, self.dim), self._limit, np.float32)
        bounds[0] *= -1
        self._sq.train(bounds)
        for block in blocks:  # in blocks: a few MB of temporaries, not 3 copies of it all
            self._append(self._centred(block))

    def _centred(self, rows: slice | list[int]) -> np.ndarray:
        return self._vectors[rows] - self._centre

    def _rows_written(self, rows: list[int]) -> None:
        fresh = self._centred(rows)
        if float(np.abs(fresh).max()) > self._limit:
            self._rows_rebuilt()  # out of the code range: a new range keeps R small
            return
        held = self._sq.ntotal
        old = [i for i, row in enumerate(rows) if row < held]
        if old:
            codes = self._sq.sa_encode(fresh[old])
            self._note_residual(fresh[old], self._sq.sa_decode(codes))
            self._codes()[[rows[i] for i in old]] = codes
        new = [i for i, row in enumerate(rows) if row >= held]
        if new:
            self._append(np.ascontiguousarray(fresh[new]))

    def _rows_moved(self, source: int, target: int) -> None:
        codes = self._codes()
        codes[target] = codes[source]

    def _rows_truncated(self, n: int) -> None:
        held = self._sq.ntotal
        if n < held:
            self._codes()[n:] = 0  # the vector keeps its capacity: overwrite, then drop
            self._sq.remove_ids(_faiss().IDSelectorRange(n, held))

    # ---- search --------------------------------------------------------------------------

    def _top(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self._tokens)
        if n < EXACT_BELOW:
            return self._exact_top(query, k)
        want = max(SHORTLIST, 2 * k)
        slack = self._residual * float(np.linalg.norm(query)) + _SLACK
        while want < n:
            approx, rows = self._sq.search(query[None, :], want)
            approx, rows = approx[0] + float(self._centre @ query), rows[0]
            exact = self._vectors[rows] @ query
            if np.any(np.abs(exact - approx) > slack):
                self.kernel_mismatches += 1
                log.error("faiss shortlist scores are off their bound; full float32 scan")
                break
            order = top_k(exact, k)
            if exact[order[-1]] > approx[-1] + slack:
                return rows[order], exact[order]
            self.widened += 1
            want *= 4
        self.full_scans += 1
        return self._exact_top(query, k)

    def _extra_bytes(self) -> int:
        return int(self._sq.ntotal * self._sq.code_size)

    def scanned_bytes(self) -> int:
        return self._extra_bytes()


def probe() -> str | None:
    """None when faiss imports and its SQ8 inner product is right here; else why not."""
    try:
        faiss = _faiss()
    except ImportError as exc:
        return f"faiss not importable: {exc}"
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((200, 32)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    sq = faiss.IndexScalarQuantizer(
        32, faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_INNER_PRODUCT
    )
    sq.train(rows)
    sq.add(rows)
    scores, found = sq.search(rows[:3], 5)
    expected = sq.sa_decode(sq.sa_encode(rows)) @ rows[:3].T
    got = np.take_along_axis(expected, found.T, axis=0).T
    if not np.allclose(scores, got, atol=1e-4) or list(found[:, 0]) != [0, 1, 2]:
        return "faiss SQ8 inner-product search disagrees with its own decoding on this CPU"
    return None
