"""The fleet's health per terminal from the messages it got: a retained `online` status
older than the console is not stale at once after a restart, only after three intervals of
silence from the console's start; the broker link turns every terminal stale."""

from __future__ import annotations

import time

from backend.console.fleet import Fleet
from device.net.client import Inbound
from tests.console.fake_terminal import telemetry_body

PREFIX = "blinkpay/v1"


def status(fleet: Fleet, device_id: str, state: str, ts: float) -> None:
    payload = {"v": 1, "device_id": device_id, "state": state, "boot_id": "0" * 32, "seq": 1,
               "ts": ts}  # fmt: skip
    fleet._on_status(Inbound(f"{PREFIX}/dev/{device_id}/status", payload, retain=True))


def health_of(fleet: Fleet, device_id: str, now: float) -> str:
    return next(r["health"] for r in fleet.rows(now) if r["device_id"] == device_id)


def test_a_retained_online_status_is_not_stale_right_after_a_restart() -> None:
    link = {"up": True}
    fleet = Fleet(PREFIX, lambda _shard: None, broker_up=lambda: link["up"])
    start = fleet.started_at
    status(fleet, "gate-1", "online", start - 3600)  # said an hour before this console
    assert health_of(fleet, "gate-1", start + 5) == "ok"
    assert health_of(fleet, "gate-1", start + 91) == "stale"  # 3 x the default 30 s
    link["up"] = False
    assert fleet.tick(start + 92)["gate-1"].health == "stale"
    assert "broker link is down" in fleet.tick(start + 95)["gate-1"].reason
    link["up"] = True
    status(fleet, "gate-1", "offline", start + 96)
    assert health_of(fleet, "gate-1", start + 97) == "offline"


def test_a_terminal_whose_signed_rows_the_host_refused_is_degraded() -> None:
    refused: set[str] = set()
    fleet = Fleet(PREFIX, lambda _shard: None, refused_rows=lambda _now: refused)
    start = fleet.started_at
    for device_id in ("gate-1", "gate-rogue"):
        status(fleet, device_id, "online", start)
    assert health_of(fleet, "gate-rogue", start + 1) == "ok"
    refused.add("gate-rogue")  # e.g. it voided gate-1's sale (foreign_tx)
    found = fleet.tick(start + 2)
    assert found["gate-rogue"].health == "degraded"
    assert found["gate-rogue"].parts == (("rows refused by the host in the last hour", {}),)
    assert found["gate-1"].health == "ok"


def test_the_store_names_terminals_with_rows_refused_since_a_time(host_db_url: str) -> None:
    from backend.console.store import ConsoleStore
    from backend.db import HostDb
    from backend.tx_rules import refuse

    store = ConsoleStore(HostDb(host_db_url))
    assert store.terminals_with_refused_rows(0.0) == set()
    with store.db.transaction() as conn:
        refuse(conn, "gate-rogue", "tx-1", "voided", "foreign_tx", {"tx_id": "tx-1"})
    now = time.time()
    assert store.terminals_with_refused_rows(now - 60) == {"gate-rogue"}
    assert store.terminals_with_refused_rows(now + 60) == set()


def telemetry(fleet: Fleet, device_id: str, seq: int, ts: float, **fields: object) -> None:
    body = telemetry_body(device_id, seq, ts=ts, interval_s=10.0, **fields)
    fleet._on_telemetry(Inbound(f"{PREFIX}/dev/{device_id}/telemetry", body))


def test_forged_or_misdirected_messages_degrade_a_terminal_while_they_come() -> None:
    """Refusals no working host or outage causes (a bad signature, a genuine command copied
    to this terminal's topic): degraded while the count rises between two reports; what an
    outage or a late registration leaves behind is not."""
    fleet = Fleet(PREFIX, lambda _shard: None)
    start = fleet.started_at
    status(fleet, "gate-1", "online", start)
    telemetry(fleet, "gate-1", 1, start + 1)
    # after an outage: old commands, re-sends, a resent row's second ack, a shard message
    # sealed before this terminal was registered
    after_outage = {"stale": 3, "repeat": 2, "replay": 1, "gap": 1, "foreign_ack": 1}
    after_outage["not_a_recipient"] = 1
    telemetry(fleet, "gate-1", 2, start + 11, rejected=after_outage)
    assert fleet.tick(start + 12)["gate-1"].health == "ok"
    telemetry(fleet, "gate-1", 3, start + 21, rejected={**after_outage, "bad_signature": 40})
    found = fleet.tick(start + 22)["gate-1"]
    assert found.health == "degraded"
    assert found.parts == (("forged or misdirected messages refused since the last report", {}),)
    telemetry(fleet, "gate-1", 4, start + 31, rejected={**after_outage, "bad_signature": 40})
    assert fleet.tick(start + 32)["gate-1"].health == "ok"  # it stopped: ok again
    telemetry(fleet, "gate-1", 5, start + 41, rejected={"bad_signature": 40, "wrong_target": 1})
    assert fleet.tick(start + 42)["gate-1"].health == "degraded"
    telemetry(fleet, "gate-1", 6, start + 51, rejected={})  # restarted: counts from 0
    assert fleet.tick(start + 52)["gate-1"].health == "ok"
