"""Commands with a lifecycle, kept in the host's store so none is lost:

    pending   -> delivered (published while the terminal is online and the broker link up)
    pending   -> expired   (the terminal did not come back within command_ttl_s)
    delivered -> delivered (sent again: the terminal came back online and no result yet)
    delivered -> done | failed (the terminal's cmd/{name}/result) | timed_out (no result
                 within command_timeout_s of its last delivery; a late result still lands)

A command to an offline terminal waits (or is refused when command_ttl_s is 0); when the
console sees that terminal's status go `online`, it publishes the pending ones, newly signed
with a fresh issued_at and the same request id. It also publishes again, the same way, that
terminal's delivered commands that have no result yet and have not timed out (the terminal
may have dropped before it got one, or its result was lost: the terminal or the console's
broker link was down when it was published), for REDELIVER_WITHIN_S after they were made;
`deliveries` counts each time one went out. The terminal runs each request id once: a
repeat of one it ran is answered with the result it recorded (device/net/remote_control.py),
one whose run a stop interrupted with `failed` and why."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from backend.console.i18n import N_
from backend.console.settings import ConsoleSettings
from backend.console.store import ConsoleStore
from device.errors import TranslatableError
from device.net.topics import COMMAND_MEMORY_S, COMMAND_NAMES

STATUSES = ("pending", "delivered", "done", "failed", "timed_out", "expired")
Publish = Callable[[str, str, str], bool]  # (device id, name, request id) -> broker took it
# Well within how long a terminal remembers a request id and its outcome: a command sent
# again after that could run twice.
REDELIVER_WITHIN_S = COMMAND_MEMORY_S / 2


class CommandRefused(TranslatableError):
    """A command not stored: an N_ message with its arguments and the counted reason."""


class Commands:
    def __init__(
        self,
        store: ConsoleStore,
        settings: ConsoleSettings,
        publish: Publish,
        reachable: Callable[[str], bool],
    ) -> None:
        self.store = store
        self.settings = settings
        self._publish = publish
        self._reachable = reachable
        self._lock = threading.Lock()  # one delivery of a pending command at a time

    def send(self, operator: str, device_id: str, name: str, now: float | None = None) -> dict:
        """Store the command and deliver it now when the terminal can hear it; else it
        waits (or CommandRefused when waiting is off)."""
        if name not in COMMAND_NAMES:
            raise CommandRefused(N_("unknown command {name}"), "unknown_command", {"name": name})
        now = time.time() if now is None else now
        reachable = self._reachable(device_id)
        ttl = self.settings.command_ttl_s
        if not reachable and ttl <= 0:
            raise CommandRefused(
                N_(
                    "{device_id} is not online and commands do not wait ([console]"
                    " command_ttl_s = 0); try again when it is"
                ),
                "terminal_offline",
                {"device_id": device_id},
            )
        request_id = uuid.uuid4().hex
        self.store.execute(
            "INSERT INTO terminal_commands (request_id, device_id, name, operator, created_at,"
            " expires_at, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (request_id, device_id, name, operator, now, now + ttl, "pending"),
        )
        if reachable:
            self._deliver(request_id, device_id, name, now)
        return self.get(request_id) or {}

    def _deliver(self, request_id: str, device_id: str, name: str, now: float) -> bool:
        """Publish a pending command, or a delivered one again; False when it is neither
        any more (a result landed, it timed out) or the broker did not take it."""
        with self._lock:
            row = self.get(request_id)
            if row is None or row["status"] not in ("pending", "delivered"):
                return False
            if not self._publish(device_id, name, request_id):
                return False  # the broker link dropped: it stays as it was
            self.store.execute(
                "UPDATE terminal_commands SET status = ?, delivered_at = ?,"
                " deliveries = deliveries + 1 WHERE request_id = ? AND status = ?",
                ("delivered", now, request_id, row["status"]),
            )
            return True

    def on_status(self, device_id: str, state: str, now: float | None = None) -> int:
        """A terminal's status: when it is online, its pending commands go out, and its
        delivered ones without a result go out again, oldest first. Returns how many went."""
        if state != "online":
            return 0
        now = time.time() if now is None else now
        rows = self.store.query(
            "SELECT request_id, name FROM terminal_commands WHERE device_id = ? AND ("
            "(status = ? AND expires_at >= ?) OR"
            " (status = ? AND delivered_at >= ? AND created_at >= ?)) ORDER BY created_at",
            (
                device_id,
                "pending",
                now,
                "delivered",
                now - self.settings.command_timeout_s,
                now - REDELIVER_WITHIN_S,
            ),
        )
        return sum(self._deliver(r["request_id"], device_id, r["name"], now) for r in rows)

    def on_result(self, result: dict[str, Any], now: float | None = None) -> None:
        """cmd/{name}/result: done or failed, with the terminal's detail."""
        now = time.time() if now is None else now
        self.store.execute(
            "UPDATE terminal_commands SET status = ?, finished_at = ?, detail = ?"
            " WHERE request_id = ? AND device_id = ? AND status IN (?, ?, ?)",
            (
                "done" if result["ok"] else "failed",
                now,
                str(result.get("detail", ""))[:512],
                result["request_id"],
                result["device_id"],
                "pending",
                "delivered",
                "timed_out",
            ),
        )

    def tick(self, now: float | None = None) -> int:
        """Pending past their time-to-live expire; delivered without a result within
        command_timeout_s of their last delivery time out. Returns how many changed."""
        now = time.time() if now is None else now
        changed = 0
        with self.store.db.transaction() as conn:
            for status, detail, column, before in (
                ("expired", "the terminal did not come back in time", "expires_at", now),
                (
                    "timed_out",
                    "no result from the terminal",
                    "delivered_at",
                    now - self.settings.command_timeout_s,
                ),
            ):
                cursor = conn.execute(
                    "UPDATE terminal_commands SET status = ?, finished_at = ?, detail = ?"
                    f" WHERE status = ? AND {column} < ?",
                    (
                        status,
                        now,
                        detail,
                        "pending" if status == "expired" else "delivered",
                        before,
                    ),
                )
                changed += max(cursor.rowcount, 0)
        return changed

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM terminal_commands WHERE request_id = ?", (request_id,))

    def of_device(self, device_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        return self.store.query(
            "SELECT * FROM terminal_commands WHERE device_id = ? ORDER BY created_at DESC LIMIT ?",
            (device_id, limit),
        )
