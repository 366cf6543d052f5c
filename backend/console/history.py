"""Telemetry and events kept in the host's store, so charts and alerts survive a restart and
span a chosen time range: every report for `raw_retention_s` (a day), per-minute aggregates
(averages of gauges, maxima of per-boot counters) for `minute_retention_s` (a month), events
for `event_retention_s`. Counters are per boot; rates (per minute) are derived on read.

Plain portable SQL (`?` placeholders, integer/real/text columns) over the console store."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from backend.console.settings import ConsoleSettings
from backend.console.store import ConsoleStore

log = logging.getLogger("blinkpay.console")

GAUGES = ("fps", "cpu_temp_c", "embed_p95", "detect_p95")
COUNTERS = ("outbox_depth", "liveness_rejections", "approved", "declined")
COLUMNS = (*GAUGES, *COUNTERS)
RATES = {"liveness_rejections": "liveness_per_min", "approved": "approved_per_min",
         "declined": "declined_per_min"}  # fmt: skip
RAW_SPAN_S = 2 * 3600.0  # ranges up to this long are drawn from every report
MAX_POINTS = 5000
REFUSAL_EVENTS = ("liveness_rejected", "unknown_face", "face_swapped")
SETTLE_S = 120  # a minute is aggregated once this long has passed since its end


def _p95(telemetry: dict[str, Any], stage: str) -> float | None:
    value = (telemetry.get("latency_ms") or {}).get(stage, {}).get("p95")
    return None if value is None else float(value)


def point(telemetry: dict[str, Any]) -> dict[str, Any]:
    """One telemetry report as a stored point."""
    decisions = telemetry.get("decisions") or {}
    return {
        "fps": telemetry.get("fps"),
        "cpu_temp_c": telemetry.get("cpu_temp_c"),
        "embed_p95": _p95(telemetry, "embed"),
        "detect_p95": _p95(telemetry, "detect"),
        "outbox_depth": telemetry.get("outbox_depth"),
        "liveness_rejections": telemetry.get("liveness_rejections"),
        "approved": int(decisions.get("approved", 0)),
        "declined": int(sum(v for k, v in decisions.items() if k != "approved")),
    }


def with_rates(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-minute rates from the per-boot counters (a drop is a reboot: no rate there)."""
    previous: dict[str, Any] | None = None
    for p in points:
        for counter, rate in RATES.items():
            value = None
            if previous is not None and p[counter] is not None and previous[counter] is not None:
                dt = p["ts"] - previous["ts"]
                delta = p[counter] - previous[counter]
                if dt > 0 and delta >= 0:
                    value = round(delta * 60.0 / dt, 3)
            p[rate] = value
        previous = p
    return points


class History:
    def __init__(self, store: ConsoleStore, settings: ConsoleSettings) -> None:
        self.store = store
        self.settings = settings

    # -- writing (the MQTT network thread) --------------------------------------------

    def record_telemetry(self, telemetry: dict[str, Any]) -> None:
        ts = float(telemetry["ts"])
        values = point(telemetry)
        self.store.execute(
            "INSERT INTO telemetry_raw (device_id, ts, minute, "
            + ", ".join(COLUMNS)
            + ") VALUES (?, ?, ?, "
            + ", ".join("?" for _ in COLUMNS)
            + ") ON CONFLICT DO NOTHING",
            (telemetry["device_id"], ts, int(ts // 60), *(values[c] for c in COLUMNS)),
        )

    def record_event(self, event: dict[str, Any]) -> None:
        self.store.execute(
            "INSERT INTO terminal_events (device_id, ts, type, outcome, body)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                event["device_id"],
                float(event["ts"]),
                event["type"],
                event.get("outcome"),
                json.dumps(event, sort_keys=True),
            ),
        )

    # -- upkeep (the console's watch thread) ------------------------------------------

    def maintain(self, now: float | None = None) -> dict[str, int]:
        """Aggregate the settled minutes not yet aggregated, then drop what is past its
        retention. Returns what it did (counts), for the log and the tests."""
        now = time.time() if now is None else now
        upto = int((now - SETTLE_S) // 60)
        done = {"minutes": 0, "raw_dropped": 0, "minute_dropped": 0, "events_dropped": 0}
        with self.store.db.transaction() as conn:
            # (a report for a minute aggregated already, come late, stays raw only)
            cursor = conn.execute(
                "INSERT INTO telemetry_minute (device_id, minute, samples, "
                + ", ".join(COLUMNS)
                + ") SELECT device_id, minute, COUNT(*), "
                + self._aggregates()
                + " FROM telemetry_raw WHERE rolled = 0 AND minute <= ?"
                " GROUP BY device_id, minute ON CONFLICT DO NOTHING",
                (upto,),
            )
            done["minutes"] = max(cursor.rowcount, 0)
            conn.execute(
                "UPDATE telemetry_raw SET rolled = 1 WHERE rolled = 0 AND minute <= ?", (upto,)
            )
        s = self.settings
        for table, column, cutoff, key in (
            ("telemetry_raw", "ts", now - s.raw_retention_s, "raw_dropped"),
            ("telemetry_minute", "minute", (now - s.minute_retention_s) // 60, "minute_dropped"),
            ("terminal_events", "ts", now - s.event_retention_s, "events_dropped"),
        ):
            with self.store.db.transaction() as conn:
                cursor = conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,))
                done[key] = max(cursor.rowcount, 0)
        if any(done.values()):
            log.info("telemetry history upkeep: %s", done)
        return done

    @staticmethod
    def _aggregates() -> str:
        """Gauges averaged over the minute, per-boot counters at their highest."""
        named = [*(f"AVG({c}) AS {c}" for c in GAUGES), *(f"MAX({c}) AS {c}" for c in COUNTERS)]
        return ", ".join(named)

    # -- reading (the web side) -------------------------------------------------------

    def series(
        self, device_id: str, since: float, until: float, now: float | None = None
    ) -> dict[str, Any]:
        """Points between since and until: every report when the range is short and within
        the raw retention, else the per-minute aggregates; with rates."""
        now = time.time() if now is None else now
        raw = until - since <= RAW_SPAN_S and since >= now - self.settings.raw_retention_s
        columns = ", ".join(COLUMNS)
        if raw:
            rows = self.store.query(
                f"SELECT ts, {columns} FROM telemetry_raw WHERE device_id = ? AND ts >= ?"
                " AND ts <= ? ORDER BY ts DESC LIMIT ?",
                (device_id, since, until, MAX_POINTS),
            )
        else:
            first, last = int(since // 60), int(until // 60)
            rows = self.store.query(
                f"SELECT minute * 60 + 30 AS ts, {columns} FROM telemetry_minute"
                " WHERE device_id = ? AND minute >= ? AND minute <= ? ORDER BY minute DESC"
                " LIMIT ?",
                (device_id, first, last, MAX_POINTS),
            )
            # the minutes not aggregated yet, aggregated on read: the range ends now
            recent = self.store.query(
                f"SELECT minute * 60 + 30 AS ts, {self._aggregates()} FROM telemetry_raw"
                " WHERE device_id = ? AND rolled = 0 AND minute >= ? AND minute <= ?"
                " GROUP BY minute ORDER BY minute DESC",
                (device_id, first, last),
            )
            have = {r["ts"] for r in rows}
            rows = sorted(
                [*rows, *(r for r in recent if r["ts"] not in have)],
                key=lambda r: r["ts"],
                reverse=True,
            )[:MAX_POINTS]
        points = with_rates(list(reversed(rows)))
        return {
            "device_id": device_id,
            "since": since,
            "until": until,
            "resolution": "raw" if raw else "minute",
            "points": points,
        }

    def events(self, device_id: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT body FROM terminal_events WHERE device_id = ? ORDER BY ts DESC LIMIT ?",
            (device_id, limit),
        )
        return [json.loads(r["body"]) for r in rows]

    def refusals_since(self, since: float) -> dict[str, int]:
        """Per terminal, the people it turned away since `since` (e.g. today): liveness
        refused, face unknown, face swapped mid-payment."""
        marks = ", ".join("?" for _ in REFUSAL_EVENTS)
        rows = self.store.query(
            "SELECT device_id, COUNT(*) AS n FROM terminal_events"
            f" WHERE type IN ({marks}) AND ts >= ? GROUP BY device_id",
            (*REFUSAL_EVENTS, since),
        )
        return {r["device_id"]: int(r["n"]) for r in rows}
