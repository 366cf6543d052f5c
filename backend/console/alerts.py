"""Alerts raised and cleared from the computed health, kept in the host's store: a terminal
whose health is not `ok` has one open alert of that kind (a change of kind clears the old one
and raises the new); `ok` clears it. The console's own broker link has an alert of its own
(device id `console`). Each raise and clear goes to the delivery (webhooks, mail).

An alert's reason is stored twice: in English (`reason`, what the deliveries carry) and as
its health's parts (`reason_parts`, JSON [[message, {name: value}], ...], migration 0010),
which the pages render in the reader's language (`reason_in`). A row raised before 0010
has no parts: its English reason is shown as it is."""

from __future__ import annotations

import json
import logging
import string
import threading
import time
from collections.abc import Callable
from typing import Any

from backend.console.health import TERMINAL_TEXT, Health, Part, reason_in
from backend.console.i18n import N_, Translate
from backend.console.store import ConsoleStore

log = logging.getLogger("blinkpay.console")

CONSOLE = "console"  # the device id of the console's own alerts
BROKER_DOWN = "broker_down"
BROKER_DOWN_REASON = N_("the console's broker link is down")
MAX_PARTS_JSON = 4096  # longer (a terminal's very long detail): the English reason only

Notify = Callable[[str, dict[str, Any]], None]  # ("raised" | "cleared", alert row)
# What a delivery carries of an alert (docs/console.md, "Alerts"): as before migration 0010.
DELIVERED = ("id", "device_id", "kind", "reason", "raised_at", "cleared_at")


def delivered(alert: dict[str, Any]) -> dict[str, Any]:
    return {key: alert.get(key) for key in DELIVERED}


def _parts_json(parts: tuple[Part, ...]) -> str | None:
    text = json.dumps([[message, args] for message, args in parts], sort_keys=True)
    return text if len(text) <= MAX_PARTS_JSON else None


def parts_of(alert: dict[str, Any]) -> list[Part]:
    """The reason's parts; a row without (raised before migration 0010, or unreadable
    parts) gives its English reason as it is."""
    raw = alert.get("reason_parts")
    try:
        loaded = json.loads(raw) if raw else None
    except ValueError:
        loaded = None
    if isinstance(loaded, list) and loaded and all(_fits(p) for p in loaded):
        return [(p[0], p[1]) for p in loaded]
    if raw:
        log.warning("alert %s: unreadable reason parts, shown in English", alert.get("id"))
    return [(TERMINAL_TEXT, {"text": str(alert.get("reason") or "")})]


def _fits(part: object) -> bool:
    """[message, {name: value}] with a value for each of the message's {names}, no more."""
    if not (isinstance(part, list) and len(part) == 2):
        return False
    message, args = part
    if not (isinstance(message, str) and isinstance(args, dict)):
        return False
    if not all(isinstance(value, str) for value in args.values()):
        return False
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(message) if name is not None}
    except ValueError:
        return False
    return names == set(args) and all(name.isidentifier() for name in names)


def reason_shown(alert: dict[str, Any], _: Translate) -> str:
    """An alert's reason in the language of `_`."""
    return reason_in(parts_of(alert), _)


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
        self, healths: dict[str, Health], broker: dict[str, Any], now: float | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Raise and clear against `healths` (device id -> its computed health) and the
        broker link. Returns the changes, in order, after storing and handing each to notify."""
        now = time.time() if now is None else now
        wanted = {d: h for d, h in healths.items() if h.health != "ok"}
        if not broker["up"]:
            wanted[CONSOLE] = Health(BROKER_DOWN, ((BROKER_DOWN_REASON, {}),))
        changes: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            current = self.open()
            for device_id, alert in current.items():
                found = wanted.get(device_id)
                known = device_id == CONSOLE or device_id in healths
                if known and (found is None or found.health != alert["kind"]):
                    changes.append(("cleared", self._clear(alert, now)))
            for device_id, found in sorted(wanted.items()):
                alert = current.get(device_id)
                if alert is None or alert["kind"] != found.health:
                    changes.append(("raised", self._raise(device_id, found, now)))
        for event, alert in changes:
            if self._notify is not None:
                self._notify(event, delivered(alert))
        return changes

    def _raise(self, device_id: str, found: Health, now: float) -> dict[str, Any]:
        reason, parts = found.reason[:512], _parts_json(found.parts)
        with self.store.db.transaction() as conn:
            alert_id = conn.execute(
                "INSERT INTO alerts (device_id, kind, reason, reason_parts, raised_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (device_id, found.health, reason, parts, now),
            ).fetchone()[0]
        return {
            "id": alert_id,
            "device_id": device_id,
            "kind": found.health,
            "reason": reason,
            "reason_parts": parts,
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
