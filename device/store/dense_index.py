"""Exact float32 1:N index: one contiguous float32 matrix, brute-force search.

The fallback when faiss is not importable, and the base of the faiss index (which keeps
this matrix to re-score its candidates exactly). Rows are kept dense (a removed row is
overwritten by the last one), so a search scans exactly the enrolled users. Subclasses
mirror row changes through the `_rows_*` hooks.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

import numpy as np


def check_query(query: np.ndarray, dim: int) -> np.ndarray:
    """The query as a flat float32 vector; refuses a wrong dimension, NaN or inf."""
    query = np.asarray(query, dtype=np.float32).reshape(-1)
    if query.shape[0] != dim:
        raise ValueError(f"query has dim {query.shape[0]}, index has {dim}")
    if not np.isfinite(query).all():
        raise ValueError("query has NaN or inf")
    return query


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k highest scores, best first (ties: lower row first)."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    best = np.argpartition(-scores, k - 1)[:k]
    return best[np.lexsort((best, -scores[best]))]


class TokenRows:
    """What every 1:N index keeps beside its vectors: the tokens by row, under one lock."""

    def __init__(self) -> None:
        self._tokens: list[str] = []
        self._rows: dict[str, int] = {}
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._rows

    def tokens(self) -> list[str]:
        with self.lock:
            return list(self._tokens)


class Float32Index(TokenRows):
    """Exact top-k by float32 dot product over every row (numpy, BLAS matrix-vector)."""

    kind = "float32"

    def __init__(self, dim: int, threads: int = 1) -> None:
        super().__init__()
        self.dim = dim
        self.threads = threads  # BLAS decides its own threads; kept for the interface
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self.full_scans = 0  # every search here is a full scan; counted by subclasses

    # ---- changes -------------------------------------------------------------------------

    def build(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        """Replace the whole index (load or snapshot)."""
        matrix = np.array(vectors, dtype=np.float32).reshape(len(tokens), self.dim)
        with self.lock:
            self._vectors.fill(0)
            self._vectors = matrix
            self._tokens = list(tokens)
            self._rows = {token: row for row, token in enumerate(self._tokens)}
            self._rows_rebuilt()

    def upsert(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        if not len(tokens):
            return
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(tokens), self.dim)
        with self.lock:
            fresh = []
            for i, token in enumerate(tokens):
                row = self._rows.get(token)
                if row is None:
                    fresh.append(i)
                else:
                    self._vectors[row] = vectors[i]
                    self._rows_written([row])
            if fresh:
                start = len(self._tokens)
                self._vectors = np.concatenate([self._vectors, vectors[fresh]])
                for i in fresh:
                    self._rows[tokens[i]] = len(self._tokens)
                    self._tokens.append(tokens[i])
                self._rows_written(list(range(start, len(self._tokens))))

    def remove(self, tokens: Sequence[str]) -> int:
        """Drop users; their rows are overwritten, not just forgotten. Returns how many."""
        removed = 0
        with self.lock:
            for token in tokens:
                row = self._rows.pop(token, None)
                if row is None:
                    continue
                last = len(self._tokens) - 1
                if row != last:
                    moved = self._tokens[last]
                    self._vectors[row] = self._vectors[last]
                    self._tokens[row] = moved
                    self._rows[moved] = row
                    self._rows_moved(last, row)
                self._vectors[last] = 0
                self._tokens.pop()
                removed += 1
            if removed:
                n = len(self._tokens)
                self._vectors = self._vectors[:n].copy()
                self._rows_truncated(n)
        return removed

    def clear(self) -> None:
        self.build([], np.zeros((0, self.dim), dtype=np.float32))

    # Hooks for an index that mirrors the matrix in another form.
    def _rows_rebuilt(self) -> None:
        """The whole matrix changed."""

    def _rows_written(self, rows: list[int]) -> None:
        """These rows were replaced or (at the end) appended."""

    def _rows_moved(self, source: int, target: int) -> None:
        """Row `source` (the last) was copied over row `target`."""

    def _rows_truncated(self, n: int) -> None:
        """Rows from n on are gone (already zeroed in the matrix)."""

    # ---- search --------------------------------------------------------------------------

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """The vectors as held (for verification against the table)."""
        with self.lock:
            return list(self._tokens), self._vectors.copy()

    def _exact_top(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self._vectors @ query
        rows = top_k(scores, k)
        return rows, scores[rows]

    def _top(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosines) of the exact top-k, best first."""
        return self._exact_top(query, k)

    def search(self, query: np.ndarray, k: int = 2) -> list[tuple[str, float]]:
        """Top-k (token, cosine), best first. query: L2-normalised float32."""
        query = check_query(query, self.dim)
        with self.lock:
            if not self._tokens or k < 1:
                return []
            rows, scores = self._top(query, min(k, len(self._tokens)))
            return [
                (self._tokens[int(row)], float(score))
                for row, score in zip(rows, scores, strict=True)
            ]

    def _extra_bytes(self) -> int:
        return 0

    def resident_bytes(self) -> int:
        """Memory held by the index: matrices, tokens and the token->row map."""
        with self.lock:
            tokens = sum(sys.getsizeof(t) for t in self._tokens)
            return int(
                self._vectors.nbytes
                + self._extra_bytes()
                + tokens
                + sys.getsizeof(self._tokens)
                + sys.getsizeof(self._rows)
            )

    def scanned_bytes(self) -> int:
        """Bytes read from memory by one search over the whole index (for estimates)."""
        return int(self._vectors.nbytes)
