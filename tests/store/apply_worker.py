"""Run as a script by test_crash.py: apply a big delta slowly enough to be killed inside it.

argv: data_dir count [slow]. With slow, it prints "inside" once the delta's transaction is
open and then sleeps a little in SQLite's progress handler; a small page cache makes SQLite
spill the uncommitted pages into the WAL while the transaction runs.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from device.config import Config
from device.store.terminal_store import open_store
from device.store.updates import encode_vector

EMBEDDER, DIM, SHARD = "test-embedder-v1", 16, "station-7"
ACCOUNT = {"status": "active", "daily_limit": 5000, "offline_allowance": 1000}


def main() -> None:
    data_dir, count, slow = sys.argv[1], int(sys.argv[2]), sys.argv[3:] == ["slow"]
    config = Config.model_validate({"device": {"data_dir": data_dir}})
    store = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    rows = np.random.default_rng(1).standard_normal((count, DIM))
    vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    ops = [
        {"op": "add", "token": f"bulk-{i:05d}", "vector_b64": encode_vector(v), "account": ACCOUNT}
        for i, v in enumerate(vectors)
    ]
    delta = {"shard_id": SHARD, "seq": 2, "embedder_version": EMBEDDER, "dim": DIM, "ops": ops}
    conn = store.database.db.conn
    conn.execute("PRAGMA cache_size=20")
    announced = False

    def slow_down() -> int:
        nonlocal announced
        if conn.in_transaction:
            if not announced:
                print("inside", flush=True)
                announced = True
            time.sleep(0.002)
        return 0

    if slow:
        conn.set_progress_handler(slow_down, 2000)
    result = store.shard.apply_delta(delta)
    print(f"finished {result.outcome}", flush=True)


if __name__ == "__main__":
    main()
