"""No enrolled vector can be found in the database files, in any plausible encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.config import Config
from device.store.terminal_store import Store

from .conftest import add_op, delta, snapshot, unit_vectors

WINDOW = 8  # bytes: 2 float32, 4 float16 or 8 int8 values in a row


def encodings(vector: np.ndarray, index_scale: float) -> dict[str, bytes]:
    """The forms a leaked template would take: float32/float16 (both byte orders), int8."""
    forms = {
        "float32": vector.astype("<f4").tobytes(),
        "float32be": vector.astype(">f4").tobytes(),
        "float16": vector.astype("<f2").tobytes(),
        "float64": vector.astype("<f8").tobytes(),
    }
    for name, scale in (("int8-row", np.abs(vector).max() / 127), ("int8-index", index_scale)):
        codes = np.clip(np.rint(vector / scale), -127, 127).astype(np.int8)
        forms[name] = codes.tobytes()
        forms[name + "+128"] = (codes.astype(np.int16) + 128).astype(np.uint8).tobytes()
    return forms


class Haystack:
    """Every WINDOW- and 2*WINDOW-byte substring of the files, for fast lookups."""

    def __init__(self, blob: bytes) -> None:
        self.windows = {
            width: {blob[i : i + width] for i in range(len(blob) - width + 1)}
            for width in (WINDOW, 2 * WINDOW)
        }

    def leaks(self, vector: np.ndarray, index_scale: float) -> list[str]:
        found = []
        for name, data in encodings(vector, index_scale).items():
            width = WINDOW * (2 if name == "float64" else 1)
            pieces = {data[i : i + width] for i in range(0, len(data) - width + 1, 2)}
            if pieces & self.windows[width]:
                found.append(name)
        return found


def database_bytes(config: Config) -> bytes:
    base = Path(config.device.data_dir) / config.store.db_file
    files = [base, *(base.with_name(base.name + s) for s in ("-wal", "-shm", "-journal"))]
    return b"".join(path.read_bytes() for path in files if path.exists())


def test_no_enrolled_vector_is_in_the_database_or_its_wal(store: Store, config: Config) -> None:
    tokens = [f"user-{i:03d}" for i in range(200)]
    vectors = unit_vectors(200, seed=11)
    added = unit_vectors(20, seed=12)
    assert store.shard.apply_snapshot(snapshot(tokens, vectors)).outcome == "applied"
    ops = [add_op(f"new-{i}", v) for i, v in enumerate(added[:10])]
    ops += [add_op(tokens[i], v, op="update") for i, v in enumerate(added[10:])]
    assert store.shard.apply_delta(delta(2, ops)).outcome == "applied"
    scale = store.shard.index.vectors()[1].max() / 127  # roughly the index's code scale
    wal = Path(config.device.data_dir) / (str(config.store.db_file) + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the fresh writes are still in the WAL
    haystack = Haystack(database_bytes(config))
    for vector in (*vectors, *added):
        assert haystack.leaks(vector, scale) == []
    store.close()  # checkpoints the WAL into the main file
    haystack = Haystack(database_bytes(config))
    for vector in (*vectors, *added):
        assert haystack.leaks(vector, scale) == []


def test_the_leak_finder_finds_a_planted_vector() -> None:
    vector = unit_vectors(1, seed=13)[0]
    scale = float(np.abs(vector).max() / 127)
    for name, data in encodings(vector, scale).items():
        blob = b"\x00" * 100 + data[4:] + b"\xff" * 100
        assert name in Haystack(blob).leaks(vector, scale)
