"""`blinkpay mdb-sim`: every scenario passes on both transports; timings are reported."""

from __future__ import annotations

import json

import pytest

from device.cli import main


def test_mdb_sim_runs_every_scenario_and_reports_timings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["mdb-sim", "--polls", "50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"]
    by_transport = {t["transport"]: t for t in report["transports"]}
    assert set(by_transport) == {"mdb-uart", "mdb-hat"}
    uart = by_transport["mdb-uart"]
    assert all(s["ok"] for s in uart["scenarios"]) and len(uart["scenarios"]) == 8
    bench = uart["poll_bench_ms"]
    assert bench["count"] + bench["over_budget"] >= 0  # measured, never judged here
    print(f"\nmdb-sim POLL bench: {bench}")


def test_mdb_sim_lists_and_refuses_unknown_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mdb-sim", "--list"]) == 0
    assert "select and vend" in capsys.readouterr().out
    assert main(["mdb-sim", "--scenario", "nope"]) == 1
    assert "unknown scenario" in capsys.readouterr().err


def test_one_scenario_on_one_transport(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["mdb-sim", "--transport", "mdb-uart", "--scenario", "product jammed", "--polls", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ok   product jammed" in out and "select and vend" not in out
