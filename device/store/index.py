"""The earlier 1:N index (`int8-cv2`): one contiguous int8 matrix with one shared scale.

Kept as a measured alternative (`blinkpay bench match`, `store.index = "int8-cv2"`); the
shipped choice is in index_choice.py.

Why int8 with ONE scale for all rows: a quarter of float32's memory and memory traffic,
and with a shared scale the dot product of integer codes ranks rows exactly as the
quantised cosine does. OpenCV's batchDistance (SIMD, releases the GIL) gives the K rows
nearest to the query in squared L2 over the codes, and for integer vectors
a.b = (|a|^2 + |b|^2 - |a-b|^2) / 2 exactly, so the candidates are re-scored exactly.
Rows outside the K nearest cannot beat (max|a|^2 + |b|^2 - D_K) / 2; when that bound
could still beat the k-th best, a full scan runs instead, so the result is always the
exact top-k over the quantised index. Rows are kept dense (a removed row is overwritten
by the last one), so a search scans exactly the enrolled users.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from device.store.dense_index import TokenRows

_PARALLEL_MIN_ROWS = 20_000  # below this, threads cost more than they save
_SCAN_ROWS = 4096  # rows per block of the full-scan fallback (fits in cache as float32)


def _code_limit(vectors: np.ndarray, dim: int) -> float:
    """The coordinate value that maps to code 127: the largest one seen, with headroom.

    Unit vectors have coordinates near 1/sqrt(dim); later additions beyond the limit are
    clipped (slightly coarser for that row only) until the next load rebuilds the index.
    """
    floor = min(1.0, 4.0 / math.sqrt(dim))
    peak = float(np.abs(vectors).max()) if vectors.size else 0.0
    return min(1.0, max(floor, 1.05 * peak))


def quantize(vectors: np.ndarray, scale: float) -> np.ndarray:
    """float32 (n, dim) -> int8 codes with x ~= codes * scale, clipped to +-127."""
    return np.clip(np.rint(vectors / scale), -127, 127).astype(np.int8)


def _sq_norms(codes: np.ndarray) -> np.ndarray:
    wide = codes.astype(np.int32)
    return np.einsum("ij,ij->i", wide, wide)


class Int8Index(TokenRows):
    kind = "int8-cv2"

    def __init__(self, dim: int, threads: int = 2) -> None:
        super().__init__()
        self.dim = dim
        self._scale = _code_limit(np.zeros(0, np.float32), dim) / 127.0
        # int8 codes + 128 (batchDistance wants uint8; the offset keeps every difference)
        self._codes = np.zeros((0, dim), dtype=np.uint8)
        self._norms = np.zeros(0, dtype=np.int64)  # |code|^2 per row
        self._max_norm = 0
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads) if self._threads > 1 else None
        self.full_scans = 0  # searches the candidate bound could not settle (for telemetry)

    def build(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        """Replace the whole index (load or snapshot); the scale is chosen from the data."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(tokens), self.dim)
        scale = _code_limit(vectors, self.dim) / 127.0
        codes = quantize(vectors, scale)
        with self.lock:
            self._wipe()
            self._scale = scale
            self._codes = (codes.view(np.uint8) ^ np.uint8(0x80)).copy()
            self._norms = _sq_norms(codes).astype(np.int64)
            self._max_norm = int(self._norms.max()) if len(tokens) else 0
            self._tokens = list(tokens)
            self._rows = {token: row for row, token in enumerate(self._tokens)}

    def upsert(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        if not len(tokens):
            return
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(tokens), self.dim)
        with self.lock:
            codes = quantize(vectors, self._scale)
            offset = codes.view(np.uint8) ^ np.uint8(0x80)
            norms = _sq_norms(codes).astype(np.int64)
            fresh = []
            for i, token in enumerate(tokens):
                row = self._rows.get(token)
                if row is None:
                    fresh.append(i)
                else:
                    self._codes[row], self._norms[row] = offset[i], norms[i]
            if fresh:
                start = len(self._tokens)
                self._codes = np.concatenate([self._codes, offset[fresh]])
                self._norms = np.concatenate([self._norms, norms[fresh]])
                for position, i in enumerate(fresh):
                    self._tokens.append(tokens[i])
                    self._rows[tokens[i]] = start + position
            self._max_norm = max(self._max_norm, int(norms.max()))

    def remove(self, tokens: Sequence[str]) -> int:
        """Drop users; their codes are overwritten, not just forgotten. Returns how many."""
        removed = 0
        with self.lock:
            for token in tokens:
                row = self._rows.pop(token, None)
                if row is None:
                    continue
                last = len(self._tokens) - 1
                if row != last:
                    moved = self._tokens[last]
                    self._codes[row], self._norms[row] = self._codes[last], self._norms[last]
                    self._tokens[row] = moved
                    self._rows[moved] = row
                self._codes[last] = 0
                self._tokens.pop()
                removed += 1
            if removed:
                n = len(self._tokens)
                self._codes, self._norms = self._codes[:n].copy(), self._norms[:n].copy()
        return removed

    def _wipe(self) -> None:
        self._codes.fill(0)
        self._codes = np.zeros((0, self.dim), dtype=np.uint8)
        self._norms = np.zeros(0, dtype=np.int64)
        self._max_norm = 0
        self._tokens, self._rows = [], {}

    def clear(self) -> None:
        with self.lock:
            self._wipe()

    def _signed(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        return (self._codes[start:stop] ^ np.uint8(0x80)).view(np.int8)

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """The dequantised vectors (for verification against the table)."""
        with self.lock:
            return list(self._tokens), self._signed().astype(np.float32) * self._scale

    # ---- search --------------------------------------------------------------------------

    def _nearest(self, query: np.ndarray, start: int, stop: int, want: int) -> tuple:
        """(rows, squared L2) of the `want` rows of [start, stop) nearest the query codes."""
        dist, rows = cv2.batchDistance(
            query, self._codes[start:stop], cv2.CV_32S, normType=cv2.NORM_L2SQR, K=want
        )
        return rows[0].astype(np.int64) + start, dist[0].astype(np.int64)

    def _full_scan(self, query: np.ndarray) -> np.ndarray:
        """Exact integer dot of every row with the query (float32 holds them exactly)."""
        n = len(self._tokens)
        dots = np.empty(n, dtype=np.float32)
        block = np.empty((min(_SCAN_ROWS, n), self.dim), dtype=np.float32)
        q = query.astype(np.float32)
        for start in range(0, n, _SCAN_ROWS):
            stop = min(n, start + _SCAN_ROWS)
            np.copyto(block[: stop - start], self._signed(start, stop), casting="unsafe")
            np.dot(block[: stop - start], q, out=dots[start:stop])
        return dots

    def _top_dots(self, query_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, integer dots) of the exact top-k, best first."""
        n = len(self._tokens)
        signed = query_codes.view(np.int8).astype(np.int64)
        query_norm = int(signed @ signed)
        want = min(n, max(8, 4 * k))
        if want == n:
            dots = self._full_scan(signed).astype(np.int64)
            rows = np.argsort(-dots, kind="stable")[:k]
            return rows, dots[rows]
        query = (query_codes ^ np.uint8(0x80))[None, :]
        if self._pool is not None and n >= _PARALLEL_MIN_ROWS:
            spans = itertools.pairwise(np.linspace(0, n, self._threads + 1).astype(int))
            found = list(self._pool.map(lambda span: self._nearest(query, *span, want), spans))
        else:
            found = [self._nearest(query, 0, n, want)]
        rows = np.concatenate([f[0] for f in found])
        dist = np.concatenate([f[1] for f in found])
        dots = (self._norms[rows] + query_norm - dist) // 2
        order = np.argsort(-dots, kind="stable")[:k]
        # Any row not returned is at least as far as the farthest returned of its part.
        unseen_best = (self._max_norm + query_norm - min(int(f[1].max()) for f in found)) // 2
        if unseen_best >= dots[order[-1]]:
            self.full_scans += 1
            all_dots = self._full_scan(signed).astype(np.int64)
            best = np.argpartition(-all_dots, k - 1)[:k]
            best = best[np.argsort(-all_dots[best], kind="stable")]
            return best, all_dots[best]
        return rows[order], dots[order]

    def search(self, query: np.ndarray, k: int = 2) -> list[tuple[str, float]]:
        """Top-k (token, cosine) by exact search, best first. query: L2-normalised float32."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise ValueError(f"query has dim {query.shape[0]}, index has {self.dim}")
        peak = float(np.abs(query).max())
        if not np.isfinite(peak):
            raise ValueError("query has NaN or inf")
        query_scale = peak / 127.0 if peak > 0 else 1.0
        codes = quantize(query[None, :], query_scale)[0].view(np.uint8)
        with self.lock:
            if not self._tokens or k < 1:
                return []
            rows, dots = self._top_dots(codes, min(k, len(self._tokens)))
            factor = self._scale * query_scale
            return [
                (self._tokens[int(row)], float(dot) * factor)
                for row, dot in zip(rows, dots, strict=True)
            ]

    def scanned_bytes(self) -> int:
        """Bytes read from memory by one search over the whole index (for estimates)."""
        return int(self._codes.nbytes)

    def resident_bytes(self) -> int:
        """Memory held by the index: matrix, norms, tokens and the token->row map."""
        with self.lock:
            tokens = sum(sys.getsizeof(t) for t in self._tokens)
            return int(
                self._codes.nbytes
                + self._norms.nbytes
                + tokens
                + sys.getsizeof(self._tokens)
                + sys.getsizeof(self._rows)
            )
