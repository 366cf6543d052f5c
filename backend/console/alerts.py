"""Alerts raised and cleared from the computed health, kept in the host's store: a terminal
whose health is not `ok` has one open alert of that kind (a change of kind clears the old one
and raises the new); `ok` clears it. The console's own broker link has an alert of its own
(device id `console`). Each raise and clear goes to the delivery (webhooks, mail)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from backend.console.store import ConsoleStore

CONSOLE = "console"  # the device id of the console's own alerts
BROKER_DOWN = "broker_down"

Notify = Callable[[str, dict[str, Any]], None]  # ("raised" | "cleared", alert row)


class Alerts:
    def __init__(self, store: ConsoleStore, notify: Notify | None = None) -> None:
        self.store = store
        self._notify = notify
        self._lock = threading.Lock()

    def open(self) -> dict[str, dict[str, Any]]:
        """device id -> its open alert."""
        rows = self.store.query("SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY id")
        return {r["device_id"]: r for r in rows}

    def evaluate(
        self, healths: dict[str, tuple[str, str]], broker: dict[str, Any], now: float | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Raise and clear against `healths` (device id -> (health, reason)) and the broker
        link. Returns the changes, in order, after storing and handing each to notify."""
        now = time.time() if now is None else now
        wanted = {d: h for d, h in healths.items() if h[0] != "ok"}
        if not broker["up"]:
            wanted[CONSOLE] = (BROKER_DOWN, "the console's broker link is down")
        changes: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            current = self.open()
            for device_id, alert in current.items():
                kind = wanted.get(device_id, (None, ""))[0]
                known = device_id == CONSOLE or device_id in healths
                if known and kind != alert["kind"]:
                    changes.append(("cleared", self._clear(alert, now)))
            for device_id, (kind, reason) in sorted(wanted.items()):
                alert = current.get(device_id)
                if alert is None or alert["kind"] != kind:
                    changes.append(("raised", self._raise(device_id, kind, reason, now)))
        for event, alert in changes:
            if self._notify is not None:
                self._notify(event, alert)
        return changes

    def _raise(self, device_id: str, kind: str, reason: str, now: float) -> dict[str, Any]:
        with self.store.db.transaction() as conn:
            alert_id = conn.execute(
                "INSERT INTO alerts (device_id, kind, reason, raised_at) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (device_id, kind, reason[:512], now),
            ).fetchone()[0]
        return {
            "id": alert_id,
            "device_id": device_id,
            "kind": kind,
            "reason": reason[:512],
            "raised_at": now,
            "cleared_at": None,
        }

    def _clear(self, alert: dict[str, Any], now: float) -> dict[str, Any]:
        self.store.execute("UPDATE alerts SET cleared_at = ? WHERE id = ?", (now, alert["id"]))
        return {**alert, "cleared_at": now}

    def history(
        self, limit: int = 50, offset: int = 0, device_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first, with each alert's deliveries."""
        where, params = ("WHERE device_id = ?", [device_id]) if device_id else ("", [])
        rows = self.store.query(
            f"SELECT * FROM alerts {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        for row in rows:
            row["deliveries"] = self.store.query(
                "SELECT event, target, attempts, status, error, at FROM alert_deliveries"
                " WHERE alert_id = ? ORDER BY id",
                (row["id"],),
            )
        return rows

    def count(self) -> int:
        row = self.store.one("SELECT COUNT(*) AS n FROM alerts")
        return int((row or {}).get("n") or 0)
