"""Telemetry history in the host's store: every report for the raw retention, then
per-minute aggregates; rates from per-boot counters; events kept; all trimmed on time."""

from __future__ import annotations

from backend.console.history import History, with_rates
from backend.console.settings import ConsoleSettings
from backend.console.store import ConsoleStore
from backend.db import HostDb

T0 = 1_800_000_000.0  # a minute boundary


def report(device_id: str, ts: float, **kw: object) -> dict[str, object]:
    return {
        "device_id": device_id,
        "ts": ts,
        "fps": 10.0,
        "cpu_temp_c": 50.0,
        "latency_ms": {"embed": {"p50": 20.0, "p95": 30.0}},
        "decisions": {"approved": 0},
        "liveness_rejections": 0,
        "outbox_depth": 0,
        **kw,
    }


def open_history(host_db_url: str, **settings: float) -> History:
    return History(ConsoleStore(HostDb(host_db_url)), ConsoleSettings(**settings))


def test_reports_are_kept_raw_then_per_minute_then_dropped(host_db_url: str) -> None:
    history = open_history(host_db_url)
    for i in range(6):  # three minutes, two reports each
        history.record_telemetry(
            report("gate-1", T0 + 30 * i, fps=8.0 + i, decisions={"approved": i, "declined": 1})
        )
    history.record_telemetry(report("gate-1", T0))  # a duplicate report is dropped
    raw = history.series("gate-1", T0, T0 + 300, now=T0 + 300)
    assert raw["resolution"] == "raw" and len(raw["points"]) == 6
    assert [p["approved_per_min"] for p in raw["points"]] == [None, 2.0, 2.0, 2.0, 2.0, 2.0]

    done = history.maintain(now=T0 + 180 + 120)  # minutes 0..2 have settled
    assert done["minutes"] == 3
    assert history.maintain(now=T0 + 180 + 120)["minutes"] == 0  # once only
    week = history.series("gate-1", T0 - 7 * 86400, T0 + 300, now=T0 + 300)
    assert week["resolution"] == "minute"
    assert [p["fps"] for p in week["points"]] == [8.5, 10.5, 12.5]  # averages
    assert [p["approved"] for p in week["points"]] == [1, 3, 5]  # counters: the maximum
    # minutes not yet settled are aggregated on read, so a long range ends now
    history.record_telemetry(report("gate-1", T0 + 240, fps=4.0))
    week = history.series("gate-1", T0 - 7 * 86400, T0 + 300, now=T0 + 300)
    assert [p["fps"] for p in week["points"]] == [8.5, 10.5, 12.5, 4.0]

    # a day later the reports are gone and the minutes remain; a month later, those too
    done = History(history.store, history.settings).maintain(now=T0 + 86400 + 400)
    assert done["raw_dropped"] == 7
    assert len(history.series("gate-1", T0, T0 + 300, now=T0 + 86400 + 400)["points"]) == 4
    done = history.maintain(now=T0 + 31 * 86400)
    assert done["minute_dropped"] == 4


def test_a_new_console_on_the_same_store_sees_the_history(host_db_url: str) -> None:
    first = open_history(host_db_url)
    first.record_telemetry(report("gate-1", T0))
    first.record_event({"device_id": "gate-1", "ts": T0, "type": "liveness_rejected"})
    first.record_event({"device_id": "gate-1", "ts": T0, "type": "passage"})
    first.store.db.close()
    second = open_history(host_db_url)
    assert len(second.series("gate-1", T0 - 60, T0 + 60, now=T0 + 60)["points"]) == 1
    assert {e["type"] for e in second.events("gate-1")} == {"liveness_rejected", "passage"}
    assert second.refusals_since(T0 - 1) == {"gate-1": 1}
    assert second.refusals_since(T0 + 1) == {}


def test_a_reboot_is_no_negative_rate() -> None:
    points = [
        {"ts": 0.0, "liveness_rejections": 5, "approved": 9, "declined": 0},
        {"ts": 60.0, "liveness_rejections": 0, "approved": 0, "declined": 0},  # rebooted
        {"ts": 120.0, "liveness_rejections": 3, "approved": 1, "declined": None},
    ]
    rated = with_rates(points)
    assert [p["liveness_per_min"] for p in rated] == [None, None, 3.0]
    assert rated[2]["declined_per_min"] is None
