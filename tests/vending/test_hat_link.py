"""The Qibixx MDB Pi HAT's cashless-slave line protocol, both directions."""

from __future__ import annotations

from device.vending.hat import HatLink, money, parse_money
from device.vending.port import (
    ReaderDisabled,
    ReaderEnabled,
    SessionCancelled,
    SessionEnded,
    SessionStarted,
    VendCancelled,
    VendFailed,
    VendRequested,
    VendSucceeded,
)


def test_money_both_ways() -> None:
    assert money(150, 2) == "1.50" and money(5, 2) == "0.05" and money(7, 0) == "7"
    assert parse_money("1.50", 2) == 150 and parse_money("1.5", 2) == 150
    assert parse_money("20", 2) == 2000
    assert parse_money("-1.00", 2) is None and parse_money("1.005", 2) is None
    assert parse_money("abc", 2) is None


def feed(link: HatLink, *lines: str) -> tuple[list[object], list[str]]:
    events: list[object] = []
    replies: list[str] = []
    for line in lines:
        e, r = link.on_line(line, 1.0)
        events += e
        replies += r
    return events, replies


def test_a_sale_as_the_hat_reports_it() -> None:
    link = HatLink(max_price=5000)
    assert feed(link, "c,STATUS,INACTIVE", "r,ACK", "c,STATUS,DISABLED")[0] == []
    assert feed(link, "c,STATUS,ENABLED")[0] == [ReaderEnabled(1.0)]
    assert link.start(2000) == "C,START,20.00"
    assert feed(link, "c,STATUS,IDLE")[0] == [SessionStarted(1.0, 2000)]
    assert feed(link, "c,STATUS,VEND,1.50,12")[0] == [VendRequested(1.0, 12, 150)]
    assert link.approve(150) == "C,VEND,1.50"
    events, _ = feed(link, "c,VEND,SUCCESS", "c,STATUS,IDLE", "c,STATUS,ENABLED")
    assert events == [VendSucceeded(1.0, 12), SessionEnded(1.0)]


def test_vend_failure_and_withdrawn_requests() -> None:
    link = HatLink()
    feed(link, "c,STATUS,ENABLED", "c,STATUS,IDLE", "c,STATUS,VEND,1.00,3")
    link.approve(100)
    assert feed(link, 'c,ERR,"VEND 3"')[0] == [VendFailed(1.0, 3)]
    feed(link, "c,STATUS,IDLE", "c,STATUS,VEND,1.00,4")
    assert feed(link, "c,STATUS,IDLE")[0] == [VendCancelled(1.0, "vmc")]


def test_an_approved_vend_the_machine_never_completes_is_cancelled() -> None:
    link = HatLink()
    feed(link, "c,STATUS,ENABLED", "c,STATUS,IDLE", "c,STATUS,VEND,1.00,4")
    assert link.approve(100) == "C,VEND,1.00"
    assert feed(link, "c,STATUS,IDLE")[0] == [VendCancelled(1.0, "vmc")]


def test_over_the_limit_is_stopped_without_asking_the_terminal() -> None:
    link = HatLink(max_price=500)
    feed(link, "c,STATUS,ENABLED")
    link.start(500)
    feed(link, "c,STATUS,IDLE")
    assert feed(link, "c,STATUS,VEND,5.01,9") == ([], ["C,STOP"])
    assert link.stats["over_max_price"] == 1


def test_disable_in_a_session_cancels_it() -> None:
    link = HatLink()
    feed(link, "c,STATUS,ENABLED", "c,STATUS,IDLE")
    events, _ = feed(link, "c,STATUS,DISABLED")
    assert events == [SessionCancelled(1.0, "vmc"), ReaderDisabled(1.0)]


def test_bad_lines_are_counted_never_raised() -> None:
    link = HatLink()
    feed(link, "", "garbage", "c,STATUS", "c,STATUS,WHAT", "c,ERR,cashless is off")
    feed(link, "c,STATUS,VEND,xx,1")
    assert link.stats["unknown_line"] == 2
    assert link.stats["unknown_status"] == 1
    assert link.stats["hat_error"] == 1
    assert link.stats["malformed"] == 1


def test_calls_out_of_place_are_refused() -> None:
    link = HatLink()
    assert link.start(100) is None
    assert link.approve(100) is None
    assert link.stats["refused_begin_session"] == 1
