"""A terminal's health is a pure function of its status, telemetry, silence, the console's
broker link and the time: each case, and the precedence between them."""

from __future__ import annotations

import pytest

from backend.console.health import HEALTHS, Observed, health, problem_first

NOW = 1_800_000_000.0


def online(**kw: object) -> Observed:
    base: dict[str, object] = {"state": "online", "last_seen": NOW - 1, "interval_s": 10.0}
    return Observed(**{**base, **kw})  # type: ignore[arg-type]


def test_a_reporting_terminal_is_ok() -> None:
    found = health(online(fps=12.0), NOW)
    assert (found.health, found.reason) == ("ok", "")


def test_fault_carries_its_reason_and_detail() -> None:
    found = health(Observed("fault", "ledger", "3 committed ledger rows are missing"), NOW)
    assert found.health == "fault"
    assert found.reason == "ledger: 3 committed ledger rows are missing"


def test_offline_by_last_will_and_by_clean_stop() -> None:
    assert health(Observed("offline", "lost", last_seen=NOW - 5), NOW).health == "offline"
    assert "last will" in health(Observed("offline", "lost"), NOW).reason
    assert health(Observed("offline", "shutdown"), NOW).reason == "stopped cleanly"


def test_stale_after_three_intervals_of_silence() -> None:
    assert health(online(last_seen=NOW - 29.0), NOW).health == "ok"
    found = health(online(last_seen=NOW - 31.0), NOW)
    assert found.health == "stale" and "31 s" in found.reason
    # without an interval in its telemetry, the terminal's default (30 s) counts
    assert health(online(interval_s=None, last_seen=NOW - 80.0), NOW).health == "ok"
    assert health(online(interval_s=None, last_seen=NOW - 91.0), NOW).health == "stale"
    assert health(Observed("unknown"), NOW).health == "stale"


def test_out_of_service_from_telemetry() -> None:
    service = {"state": "out_of_service", "detail": "ledger write failed: disk full"}
    found = health(online(service=service), NOW)
    assert (found.health, found.reason) == ("out_of_service", "ledger write failed: disk full")
    assert health(online(service={"state": "in_service", "detail": ""}), NOW).health == "ok"


def test_degraded_by_history_and_low_frame_rate() -> None:
    found = health(online(degradations=("outbox growing",), fps=1.5), NOW)
    assert found.health == "degraded"
    assert found.reason == "outbox growing, low frame rate (1.5 fps)"


def test_broker_link_down_overrides_everything() -> None:
    for observed in (online(), Observed("fault", "ledger"), Observed("offline", "lost")):
        found = health(
            Observed(**{**observed.__dict__, "broker_up": False, "broker_down_since": NOW - 12}),
            NOW,
        )
        assert found.health == "stale"
        assert "broker link is down for 12 s" in found.reason


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        # fault wins over silence: a terminal that refused to start sends no telemetry
        (Observed("fault", "ledger", last_seen=NOW - 999), "fault"),
        # silence wins over the last telemetry's out_of_service: that telemetry is old
        (online(last_seen=NOW - 99, service={"state": "out_of_service", "detail": ""}), "stale"),
        # out_of_service wins over degraded
        (online(service={"state": "out_of_service", "detail": "x"}, fps=0.5), "out_of_service"),
    ],
)
def test_precedence(observed: Observed, expected: str) -> None:
    assert health(observed, NOW).health == expected


def test_problems_sort_first() -> None:
    ordered = sorted(HEALTHS, key=problem_first)
    assert ordered[0] == "fault" and ordered[-1] == "ok"
