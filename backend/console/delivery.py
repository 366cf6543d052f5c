"""Alert delivery: each raise and clear as a JSON POST to every configured webhook, and as a
mail through the configured SMTP server; each target has its own queue and thread, so a dead
one delays only itself. A failed try is retried with doubling back-off (1 s, 2 s, 4 s, ...)
up to `delivery_attempts`; every outcome is stored beside the alert (alert_deliveries)."""

from __future__ import annotations

import json
import logging
import queue
import smtplib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from backend.console.settings import ConsoleSettings, SmtpSettings
from backend.console.store import ConsoleStore

log = logging.getLogger("blinkpay.console")

BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
TIMEOUT_S = 10.0

Send = Callable[[str, dict[str, Any]], None]  # raises on failure


def payload(event: str, alert: dict[str, Any], console_id: str) -> dict[str, Any]:
    return {"event": event, "console": console_id, "alert": alert}


def post_json(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body, sort_keys=True).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "blinkpay-console"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def send_mail(smtp: SmtpSettings, body: dict[str, Any]) -> None:
    alert = body["alert"]
    message = EmailMessage()
    message["From"] = smtp.mail_from
    message["To"] = ", ".join(smtp.mail_to)
    message["Subject"] = f"[blinkpay] {body['event']}: {alert['device_id']} {alert['kind']}"
    lines = [
        f"{alert['device_id']}: {alert['kind']} ({body['event']})",
        f"reason: {alert['reason']}",
        f"raised: {_utc(alert['raised_at'])}",
    ]
    if alert.get("cleared_at") is not None:
        lines.append(f"cleared: {_utc(alert['cleared_at'])}")
    message.set_content("\n".join([*lines, "", json.dumps(body, sort_keys=True), ""]))
    with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_S) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


class Target:
    """One webhook or the mail: a queue and a thread that retries with back-off."""

    def __init__(
        self, name: str, send: Send, store: ConsoleStore, attempts: int, stop: threading.Event
    ) -> None:
        self.name = name
        self._send = send
        self._store = store
        self._attempts = attempts
        self._stop = stop
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name=f"alerts-{name[:24]}", daemon=True)
        self._thread.start()

    def put(self, event: str, body: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((event, body))
        except queue.Full:
            self._record(event, body, 0, "dropped", "delivery queue full")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event, body = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._deliver(event, body)

    def _deliver(self, event: str, body: dict[str, Any]) -> None:
        delay, error = BACKOFF_S, ""
        for attempt in range(1, self._attempts + 1):
            try:
                self._send(self.name, body)
            except (OSError, smtplib.SMTPException, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("alert delivery to %s failed (try %d): %s", self.name, attempt, error)
                if attempt < self._attempts and self._stop.wait(delay):
                    break  # stopping: record what happened so far
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            self._record(event, body, attempt, "delivered", None)
            return
        self._record(event, body, attempt, "failed", error)

    def _record(
        self, event: str, body: dict[str, Any], attempts: int, status: str, error: str | None
    ) -> None:
        try:
            self._store.execute(
                "INSERT INTO alert_deliveries (alert_id, event, target, attempts, status, error,"
                " at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (body["alert"]["id"], event, self.name, attempts, status, error, time.time()),
            )
        except Exception:  # the store is gone (shutting down): the log keeps it
            log.exception("could not record the delivery to %s", self.name)


class Delivery:
    def __init__(self, store: ConsoleStore, settings: ConsoleSettings, console_id: str) -> None:
        self._console_id = console_id
        self._stop = threading.Event()
        self.targets: list[Target] = [
            Target(url, lambda url, body: post_json(url, body), store, settings.delivery_attempts,
                   self._stop)
            for url in settings.webhooks
        ]  # fmt: skip
        smtp = settings.smtp
        if smtp is not None:
            self.targets.append(
                Target(
                    f"mail:{','.join(smtp.mail_to)}",
                    lambda _name, body: send_mail(smtp, body),
                    store,
                    settings.delivery_attempts,
                    self._stop,
                )
            )

    def notify(self, event: str, alert: dict[str, Any]) -> None:
        body = payload(event, alert, self._console_id)
        for target in self.targets:
            target.put(event, body)

    def stop(self) -> None:
        self._stop.set()
        for target in self.targets:
            target.join(5.0)
