"""The db commands and bench match, run through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.cli import main
from device.config import Config
from device.store.terminal_store import open_store

from .conftest import DIM, EMBEDDER, SHARD, snapshot, unit_vectors


@pytest.fixture
def config_file(config: Config, tmp_path: Path) -> Path:
    store = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    tokens = [f"user-{i:03d}" for i in range(12)]
    statuses = ["active"] * 9 + ["suspended", "suspended", "revoked"]
    store.shard.apply_snapshot(snapshot(tokens, unit_vectors(12), version=4, statuses=statuses))
    store.close()
    path = tmp_path / "blinkpay.toml"
    path.write_text(f'[device]\ndata_dir = "{config.device.data_dir}"\n')
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_db_stats_counts_by_status_and_versions(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stats = run_json(capsys, "db", "stats", "--config", str(config_file))
    assert code == 0
    assert stats["accounts"] == {"active": 9, "suspended": 2, "revoked": 1}
    assert stats["templates"] == 12 and stats["index"]["templates"] == 9
    assert stats["index"]["kind"] in ("faiss-sq8", "float32")  # the automatic choice
    assert stats["shard"]["shard_id"] == SHARD and stats["shard"]["version"] == 4
    assert stats["shard"]["embedder_version"] == EMBEDDER and stats["shard"]["dim"] == DIM
    assert stats["file"]["bytes"] > 0
    assert main(["db", "stats", "--config", str(config_file)]) == 0
    assert "accounts.active: 9" in capsys.readouterr().out


def test_db_verify_passes_then_catches_a_swapped_record(
    config_file: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_json(capsys, "db", "verify", "--config", str(config_file))
    assert code == 0 and report["ok"]
    names = {check["name"] for check in report["checks"]}
    assert {"store.integrity", "store.templates", "store.accounts", "store.index"} <= names
    store = open_store(config.store, config.device.data_dir)
    db = store.database.db
    a = db.execute("SELECT nonce, ciphertext FROM templates WHERE token = 'user-000'").fetchone()
    db.execute("UPDATE templates SET nonce = ?, ciphertext = ? WHERE token = 'user-001'", a)
    store.close()
    code, report = run_json(capsys, "db", "verify", "--config", str(config_file))
    failed = {check["name"]: check["detail"] for check in report["checks"] if not check["ok"]}
    assert code == 1 and not report["ok"]
    assert "does not decrypt" in failed["store.templates"]
    assert set(failed) == {"store.templates"}  # the others are still served


def test_db_rekey_changes_the_key_and_the_store_still_verifies(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = run_json(capsys, "db", "rekey", "--config", str(config_file))
    assert code == 0 and result["templates"] == 12
    assert result["key_id"] != result["old_key_id"]
    code, report = run_json(capsys, "db", "verify", "--config", str(config_file))
    assert code == 0 and report["ok"]


def test_db_commands_without_a_database_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blinkpay.toml"
    path.write_text(f'[device]\ndata_dir = "{tmp_path / "empty"}"\n')
    assert main(["db", "stats", "--config", str(path)]) == 1
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "blinkpay.db").exists()


def test_bench_match_reports_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, figures = run_json(
        capsys, "bench", "match", "--templates", "3000", "--dim", "64", "--queries", "30"
    )
    assert code == 0
    for key in ("load_s", "bytes_per_template", "search_p50_ms", "search_p99_ms"):
        assert figures[key] > 0
    assert figures["baseline_p50_ms"] == figures["candidates"]["float32"]["search_p50_ms"]
    assert figures["templates"] == 3000 and figures["mate_rank1"] == 1.0
    assert figures["queries"] == 60 and figures["mated_queries"] == 30 and figures["k"] == 4
    assert figures["threads"] == 1 and figures["shipped"] == figures["auto_choice"]
    assert figures["pi_bandwidth_gb_s"] == {"pi4": 4.0, "pi5": 10.0}
    kinds = {"float32", "int8-cv2"} | ({"faiss-sq8"} if figures["faiss_problem"] is None else set())
    assert set(figures["candidates"]) == kinds and figures["shipped"] in kinds
    for kind, row in figures["candidates"].items():
        for key in ("search_p50_ms", "search_p99_ms", "warm_p50_ms", "warm_p99_ms", "build_s"):
            assert row[key] >= 0, (kind, key)
        assert row["bytes_per_template"] > 0
        assert row["scanned_bytes_per_search"] == 3000 * 64 * (4 if kind == "float32" else 1)
        assert row["pi4_floor_ms"] >= row["pi5_floor_ms"] > 0
        assert 0 <= row["recall_at_k"] <= 1 and 0 <= row["within_tolerance"] <= 1
        assert row["mate_rank1"] == 1.0
    for exact in kinds - {"int8-cv2"}:  # the exact kinds match float64 top-k to rounding
        row = figures["candidates"][exact]
        assert row["identical_top_k"] == 1.0 and row["max_score_error"] < 1e-5


def test_db_verify_reports_an_emptied_ledger_and_writes_nothing(
    config_file: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    import uuid6

    from device.store.terminal_store import db_path

    store = open_store(config.store, config.device.data_dir)
    document = {
        "id": str(uuid6.uuid7()),
        "created_at": "2026-12-06T03:00:00.000000Z",
        "amount": 250,
        "currency": "EUR",
        "token": "user-000",
        "mode": "turnstile",
    }
    store.ledger.write_pending(document)
    store.ledger.verify_chain()  # the anchor now says one row was written
    store.close()
    path = db_path(config.store, config.device.data_dir)
    for side in ("-wal", "-shm"):
        path.with_name(path.name + side).unlink(missing_ok=True)
    path.write_bytes(b"")  # the ledger emptied

    assert main(["db", "verify", "--config", str(config_file)]) == 3
    err = capsys.readouterr().err
    assert "is empty (0 bytes)" in err and "db recover" in err and "Traceback" not in err
    assert path.stat().st_size == 0  # no schema made in it
    assert not path.with_name(path.name + "-wal").exists()
