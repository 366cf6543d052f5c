"""Which 1:N index the shard builds: the fastest exact one this platform can run.

`faiss-sq8` (faiss_index.py) when faiss imports and its kernel checks out, else the
`float32` brute force (dense_index.py); `int8-cv2` (index.py, the earlier index) can be
forced by config. `blinkpay bench match` measures all three side by side.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from device.store import faiss_index
from device.store.config import IndexKind
from device.store.dense_index import Float32Index
from device.store.index import Int8Index

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("faiss-sq8", "float32", "int8-cv2")


class SearchIndex(Protocol):
    """What the shard, verify and the bench use of an index."""

    kind: str
    dim: int
    lock: threading.RLock
    full_scans: int

    def __len__(self) -> int: ...
    def __contains__(self, token: object) -> bool: ...
    def tokens(self) -> list[str]: ...
    def build(self, tokens: Sequence[str], vectors: np.ndarray) -> None: ...
    def upsert(self, tokens: Sequence[str], vectors: np.ndarray) -> None: ...
    def remove(self, tokens: Sequence[str]) -> int: ...
    def clear(self) -> None: ...
    def vectors(self) -> tuple[list[str], np.ndarray]: ...
    def search(self, query: np.ndarray, k: int = 2) -> list[tuple[str, float]]: ...
    def resident_bytes(self) -> int: ...
    def scanned_bytes(self) -> int: ...


@functools.cache
def faiss_problem() -> str | None:
    """Why faiss-sq8 cannot be used here (None: it can). Checked once per process."""
    return faiss_index.probe()


def resolve(kind: IndexKind | str = "auto") -> str:
    """The concrete kind: `auto` is faiss-sq8 when usable, else float32. faiss-sq8 asked
    for where faiss is unusable also gets float32 (logged): a terminal that serves beats
    one that does not start."""
    if kind not in ("auto", "faiss-sq8"):
        return kind
    problem = faiss_problem()
    if problem is None:
        log.info("1:N index: faiss-sq8")
        return "faiss-sq8"
    if kind == "faiss-sq8":
        log.error("1:N index: faiss-sq8 configured, but %s: float32 brute force", problem)
    else:
        log.info("1:N index: float32 brute force (%s)", problem)
    return "float32"


def new_index(dim: int, threads: int = 1, kind: IndexKind | str = "auto") -> SearchIndex:
    """An empty index of the given (or automatically chosen) kind."""
    chosen = resolve(kind)
    if chosen == "faiss-sq8":
        return faiss_index.FaissSq8Index(dim, threads)
    if chosen == "float32":
        return Float32Index(dim, threads)
    if chosen == "int8-cv2":
        return Int8Index(dim, threads)
    raise ValueError(f"unknown index kind {kind!r} (one of auto, {', '.join(KINDS)})")
