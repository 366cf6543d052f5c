"""The MQTT link's outbound side: the QoS 1 publishes the broker has not acknowledged yet
(what `flush` waits for) and the round trip of the last one (telemetry's broker RTT)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["Pubacks"]

# PUBACKs lost with a dropped session never come: past this many, start again
_MAX_PENDING = 10_000


class Pubacks:
    """QoS 1 publishes in flight by message id, and the last broker round trip."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent_at: dict[int, float] = {}
        self.rtt_ms: float | None = None

    def sent(self, mid: int) -> None:
        with self._lock:
            self._sent_at[mid] = time.monotonic()
            if len(self._sent_at) > _MAX_PENDING:
                self._sent_at.clear()

    def on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        """paho's on_publish (network thread): the broker has this one."""
        with self._lock:
            sent = self._sent_at.pop(mid, None)
        if sent is not None:
            self.rtt_ms = (time.monotonic() - sent) * 1000.0

    def wait(self, timeout: float, connected: Callable[[], bool]) -> bool:
        """True once none is in flight; False on timeout or as soon as the link is down."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._sent_at:
                    return True
            if not connected():
                return False
            time.sleep(0.02)
        return False
