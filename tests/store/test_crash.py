"""A real process killed with SIGKILL inside a 10,000-record delta: the store reopens at
the previous version, consistent, and the same delta then applies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from device.config import Config
from device.selftest.storage import verify_store
from device.store.terminal_store import open_store

from .conftest import DIM, EMBEDDER, SHARD, snapshot, unit_vectors

WORKER = Path(__file__).with_name("apply_worker.py")
RECORDS = 10_000


def _wait_for_growth(wal: Path, minimum: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        size = wal.stat().st_size if wal.exists() else 0
        if size >= minimum:
            return size
        time.sleep(0.01)
    raise AssertionError(f"{wal} never grew past {minimum} bytes")


def test_sigkill_inside_a_big_delta_leaves_the_previous_version(config: Config) -> None:
    tokens = [f"user-{i:03d}" for i in range(300)]
    vectors = unit_vectors(300)
    store = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    assert store.shard.apply_snapshot(snapshot(tokens, vectors)).outcome == "applied"
    store.close()
    data_dir = Path(config.device.data_dir)
    wal = data_dir / (str(config.store.db_file) + "-wal")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(data_dir), str(RECORDS), "slow"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "inside"
        # Uncommitted pages of the delta are on disk in the WAL when the kill lands.
        written = _wait_for_growth(wal, 256 * 1024, time.monotonic() + 30)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert wal.stat().st_size >= written

    reopened = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    try:
        info = reopened.shard.info()
        assert info is not None and info.version == 1
        db = reopened.database.db
        assert db.execute("SELECT count(*) FROM templates").fetchone()[0] == 300
        assert db.execute("SELECT count(*) FROM accounts").fetchone()[0] == 300
        assert len(reopened.shard.index) == 300
        checks = verify_store(reopened)
        assert all(check.ok for check in checks), checks
        assert reopened.shard.search(vectors[42], 1)[0][0] == tokens[42]
    finally:
        reopened.close()

    # The same delta, not interrupted, commits as one: all 10,000 records and seq 2.
    done = subprocess.run(
        [sys.executable, str(WORKER), str(data_dir), str(RECORDS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.stdout.strip() == "finished applied", done.stderr
    final = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    try:
        info = final.shard.info()
        assert info is not None and info.version == 2
        assert len(final.shard.index) == 300 + RECORDS
        assert all(check.ok for check in verify_store(final))
    finally:
        final.close()
