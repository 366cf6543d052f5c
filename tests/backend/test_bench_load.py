"""Many host workers on one store, end to end: real mosquitto, real `blinkpay-host serve`
processes on SQLite and on a real PostgreSQL, registered terminals sending signed rows;
one worker SIGKILLed half-way and restarted. Nothing is lost or taken twice, and every
hold ends settled (backend/bench_load.py; the figures are in docs/scaling.md)."""

from __future__ import annotations

import argparse
import json

import pytest

from backend.bench_load import add_arguments, run_load
from backend.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.mqtt]


def _args(db: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(
        ["--terminals", "24", "--rate", "12", "--duration", "8", "--workers", "2",
         "--db", db, "--kill-worker", "--restart-after", "0.5"]
    )  # fmt: skip


def _books_hold(report: dict) -> None:
    assert report["worker_killed"] is True and report["worker_restarts"] == 1
    assert report["workers_crashed"] == []  # the restarted one serves to the end
    assert report["payments"] > 0 and report["approved"] > 0
    assert report["charged"] == report["approved"]  # every approved row charged once
    assert report["money_lost"] == 0 and report["taken_twice"] == 0
    assert report["holds_open"] == 0  # every hold settled by its row
    assert report["rows_unacknowledged"] == 0 and report["rows_not_recorded"] == 0
    assert report["rows_settled"] == report["rows"] == report["payments"]
    assert report["books_balanced"] is True
    assert report["bad_signatures"] == 0


def test_a_worker_killed_mid_run_loses_nothing_on_sqlite() -> None:
    report = run_load(_args("sqlite"))
    assert report["db"] == "sqlite"
    _books_hold(report)


def test_a_worker_killed_mid_run_loses_nothing_on_postgresql(postgres_server) -> None:
    report = run_load(_args(postgres_server.url()))  # a schema of its own, dropped after
    assert report["db"] == "postgresql"
    _books_hold(report)


def test_the_command_prints_the_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "load", "--terminals", "3", "--rate", "3", "--duration", "2",
                 "--workers", "1", "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("auth_per_s", "auth_p50_ms", "auth_p99_ms", "approved", "charged", "money_lost",
                "taken_twice", "holds_open", "workers", "worker_killed", "db"):  # fmt: skip
        assert key in report
    assert report["worker_killed"] is False and report["db"] == "sqlite"
    cpu = report["cpu_ms_per_payment"]  # read from /proc (the broker may stay under one tick)
    assert cpu["workers"] > 0 and cpu["terminals"] > 0 and cpu["broker"] >= 0
    assert cpu["database"] is None  # SQLite runs inside the workers
    assert cpu["total"] == pytest.approx(
        cpu["workers"] + cpu["broker"] + cpu["terminals"], abs=0.05
    )
