"""blinkpay bench match: 1:N search speed and memory on random templates.

Templates go through the real path (snapshot -> AES-GCM -> SQLite -> load -> int8 index)
in a temporary database; the float32 numpy brute force over the same vectors runs in the
same process, query for query, as the baseline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from device.cli._common import print_json
from device.config import Config
from device.errors import BlinkpayError
from device.store.keys import provision_keys
from device.store.terminal_store import open_store, store_key_paths
from device.store.updates import encode_vector

HELP = "1:N search speed and memory"
EMBEDDER = "bench-random-v1"
MATE_COSINE = 0.75  # planted mates: about as close as a real same-person pair


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--templates", type=int, default=10_000, help="enrolled templates")
    parser.add_argument("--dim", type=int, default=128, help="template dimension")
    parser.add_argument("--queries", type=int, default=300, help="searches to time")
    parser.add_argument("--threads", type=int, default=2, help="search threads")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the templates")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _top2_float32(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    scores = matrix @ query
    best = np.argpartition(scores, -2)[-2:]
    return best[np.argsort(-scores[best])]


def bench(templates: int, dim: int, queries: int, threads: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    vectors = _unit(rng.standard_normal((templates, dim)))
    mates = rng.choice(templates, size=min(queries, templates), replace=False)
    noise = _unit(rng.standard_normal((len(mates), dim)))
    # q = c*t + s*n with n orthogonalised against t: cosine(q, t) = MATE_COSINE exactly.
    noise = _unit(noise - (noise * vectors[mates]).sum(1, keepdims=True) * vectors[mates])
    sine = np.sqrt(1 - MATE_COSINE**2)
    probes = _unit(MATE_COSINE * vectors[mates] + sine * noise)
    tokens = [f"bench-{i:08d}" for i in range(templates)]
    account = {"status": "active", "daily_limit": 10_000, "offline_allowance": 1_000}
    snapshot = {
        "shard_id": "bench",
        "version": 1,
        "embedder_version": EMBEDDER,
        "dim": dim,
        "records": [
            {"token": t, "vector_b64": encode_vector(v), "account": account}
            for t, v in zip(tokens, vectors, strict=True)
        ],
    }
    with tempfile.TemporaryDirectory(prefix="blinkpay-bench-") as tmp:
        config = Config.model_validate(
            {"device": {"data_dir": tmp}, "store": {"search_threads": threads}}
        )
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
        db_bytes = Path(tmp, config.store.db_file).stat().st_size
        shard = store.shard
        ours: list[float] = []
        baseline: list[float] = []
        hits = baseline_hits = 0
        for probe, mate in zip(probes, mates, strict=True):
            started = time.perf_counter()
            found = shard.search(probe, 2)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            best = _top2_float32(vectors, probe)
            baseline.append(time.perf_counter() - started)
            hits += found[0][0] == tokens[mate]
            baseline_hits += int(best[0]) == int(mate)
        resident = shard.index.resident_bytes()
        full_scans = shard.index.full_scans
        store.close()
    return {
        "templates": templates,
        "dim": dim,
        "queries": len(probes),
        "threads": threads,
        "apply_s": round(apply_s, 3),
        "load_s": round(load_s, 3),
        "bytes_per_template": round(resident / templates, 1),
        "rss_growth_per_template": round((rss_after - rss_before) / templates, 1),
        "db_bytes_per_template": round(db_bytes / templates, 1),
        "search_p50_ms": round(float(np.percentile(ours, 50)) * 1e3, 3),
        "search_p99_ms": round(float(np.percentile(ours, 99)) * 1e3, 3),
        "baseline_p50_ms": round(float(np.percentile(baseline, 50)) * 1e3, 3),
        "baseline_p99_ms": round(float(np.percentile(baseline, 99)) * 1e3, 3),
        "full_scans": full_scans,  # searches the candidate bound could not settle
        "mate_rank1": round(hits / len(probes), 4),
        "baseline_mate_rank1": round(baseline_hits / len(probes), 4),
    }


def run(args: argparse.Namespace) -> int:
    if args.templates < 2 or args.dim < 2 or args.queries < 1 or args.threads < 1:
        raise BlinkpayError("--templates and --dim must be >= 2, --queries and --threads >= 1")
    figures = bench(args.templates, args.dim, args.queries, args.threads, args.seed)
    if args.json:
        print_json(figures)
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0
