"""The in-memory 1:N index: one contiguous int8 matrix with a scale per row, exact search.

int8 codes take a quarter of float32's memory and memory traffic; the per-row scale
keeps the cosine error near 1e-3. Rows are kept dense (a removed row is filled with
the last one), so a search scans exactly the enrolled users.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_PARALLEL_MIN_ROWS = 20_000  # below this, threads cost more than they save


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 (n, dim) -> int8 codes (n, dim) and float32 scales (n,): x ~= codes * scale."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    peak = np.abs(vectors).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.rint(vectors / scales[:, None]).astype(np.int8)
    return codes, scales


class TemplateIndex:
    def __init__(self, dim: int, threads: int = 2) -> None:
        self.dim = dim
        self._codes = np.zeros((0, dim), dtype=np.int8)
        self._scales = np.zeros(0, dtype=np.float32)
        self._tokens: list[str] = []
        self._rows: dict[str, int] = {}
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads) if self._threads > 1 else None
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._rows

    def tokens(self) -> list[str]:
        with self.lock:
            return list(self._tokens)

    def build(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        """Replace the whole index (load or snapshot)."""
        codes, scales = quantize(vectors) if len(tokens) else (None, None)
        with self.lock:
            self._wipe()
            if codes is not None and scales is not None:
                self._codes, self._scales = codes, scales
            self._tokens = list(tokens)
            self._rows = {token: row for row, token in enumerate(self._tokens)}

    def upsert(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        if not len(tokens):
            return
        codes, scales = quantize(vectors)
        with self.lock:
            fresh = []
            for i, token in enumerate(tokens):
                row = self._rows.get(token)
                if row is None:
                    fresh.append(i)
                else:
                    self._codes[row], self._scales[row] = codes[i], scales[i]
            if fresh:
                start = len(self._tokens)
                self._codes = np.concatenate([self._codes[:start], codes[fresh]])
                self._scales = np.concatenate([self._scales[:start], scales[fresh]])
                for offset, i in enumerate(fresh):
                    self._tokens.append(tokens[i])
                    self._rows[tokens[i]] = start + offset

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
                    self._codes[row], self._scales[row] = self._codes[last], self._scales[last]
                    self._tokens[row] = moved
                    self._rows[moved] = row
                self._codes[last] = 0
                self._tokens.pop()
                removed += 1
            if removed:
                n = len(self._tokens)
                self._codes, self._scales = self._codes[:n].copy(), self._scales[:n].copy()
        return removed

    def _wipe(self) -> None:
        self._codes.fill(0)
        self._codes = np.zeros((0, self.dim), dtype=np.int8)
        self._scales = np.zeros(0, dtype=np.float32)
        self._tokens, self._rows = [], {}

    def clear(self) -> None:
        with self.lock:
            self._wipe()

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """The dequantised vectors (for verification against the table)."""
        with self.lock:
            return list(self._tokens), self._codes.astype(np.float32) * self._scales[:, None]

    def _scan(self, start: int, stop: int, query: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
        dots = np.einsum("ij,j->i", self._codes[start:stop], query, dtype=np.int32)
        scores = dots * self._scales[start:stop]
        if stop - start > k:
            best = np.argpartition(scores, -k)[-k:]
            return best + start, scores[best]
        return np.arange(start, stop), scores

    def search(self, query: np.ndarray, k: int = 2) -> list[tuple[str, float]]:
        """Top-k (token, cosine) by exact scan, best first. query: L2-normalised float32."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise ValueError(f"query has dim {query.shape[0]}, index has {self.dim}")
        codes, scale = quantize(query[None, :])
        with self.lock:
            n = len(self._tokens)
            if n == 0 or k < 1:
                return []
            if self._pool is not None and n >= _PARALLEL_MIN_ROWS:
                bounds = np.linspace(0, n, self._threads + 1).astype(int)
                parts = list(
                    self._pool.map(
                        lambda ab: self._scan(ab[0], ab[1], codes[0], k),
                        itertools.pairwise(bounds),
                    )
                )
                rows = np.concatenate([p[0] for p in parts])
                scores = np.concatenate([p[1] for p in parts])
            else:
                rows, scores = self._scan(0, n, codes[0], k)
            order = np.argsort(-scores, kind="stable")[:k]
            factor = float(scale[0])
            return [(self._tokens[int(rows[i])], float(scores[i]) * factor) for i in order]

    def resident_bytes(self) -> int:
        """Memory held by the index: matrix, scales, tokens and the token->row map."""
        with self.lock:
            tokens = sum(sys.getsizeof(t) for t in self._tokens)
            return int(
                self._codes.nbytes
                + self._scales.nbytes
                + tokens
                + sys.getsizeof(self._tokens)
                + sys.getsizeof(self._rows)
            )
