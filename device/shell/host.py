"""The payment host as the session's effects see it, over device.net's NetService.

NetService.authorize blocks for up to the auth timeout, so each request runs on its own
short thread and its answer (or "unavailable") is posted back to the main loop. The
session keeps its own authorization deadline as well, so a thread that hangs changes
nothing: the session falls back to the offline rules on time and ignores a late answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from device.clock import Clock
from device.core.events import AuthResponse, AuthUnavailable, RequestAuthorization
from device.net.service import NetService

log = logging.getLogger("blinkpay.host")


class NetHost:
    def __init__(self, net: NetService, post: Callable[[object], object], clock: Clock) -> None:
        self.net, self._post, self._clock = net, post, clock

    def request_authorization(self, request: RequestAuthorization, now: float) -> None:

        def ask() -> None:
            try:
                reply = self.net.authorize(
                    tx_id=request.tx_id,
                    amount=request.amount,
                    currency=request.currency,
                    candidates=request.candidates,
                )
            except Exception:
                log.exception("authorization request failed", extra={"event": "auth_error"})
                reply = None
            at = self._clock.monotonic()
            if reply is None:
                self._post(AuthUnavailable(at, request.tx_id))
            else:
                self._post(AuthResponse(at, reply.tx_id, reply.approved, reply.reason, reply.token))

        threading.Thread(target=ask, name="auth-request", daemon=True).start()

    def void(self, tx_id: str, reason: str) -> None:
        self.net.publish_event("void", outcome="voided", reasons=[reason], tx_id=tx_id)

    def publish_event(self, kind: str, fields: dict[str, Any]) -> None:
        self.net.publish_event(
            kind, reasons=[str(r) for r in fields.get("reasons", ())], tx_id=fields.get("tx_id")
        )

    def publish_retemplate(self, message: dict[str, Any]) -> bool:
        return self.net.publish_retemplate(message)

    def resync(self) -> bool:
        return self.net.resync()

    def online(self) -> bool:
        """The broker link is up (a vending session is offered with online funds)."""
        return bool(self.net.link.connected)

    def ledger_changed(self) -> None:
        self.net.tx_written()
