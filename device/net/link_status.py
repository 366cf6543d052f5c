"""The retained status documents one MQTT link publishes on its status topic: `online` on
every connect, `offline` at a clean shutdown or as the broker's last will, `fault` when the
terminal will not start. `boot_id` and `seq` order them: a reader keeps the newest."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

__all__ = ["LinkStatus"]


class LinkStatus:
    """Status documents for one owner id (the device id, or a host id) and one boot."""

    def __init__(self, owner_id: str, software: str = "") -> None:
        self.owner_id = owner_id
        self.software = software
        self.boot_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._seq = 0

    def document(self, state: str, protocol: str, reason: str | None = None) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            seq = self._seq
        status: dict[str, Any] = {
            "v": 1,
            "device_id": self.owner_id,
            "state": state,
            "boot_id": self.boot_id,
            "seq": seq,
        }
        if reason:
            status["reason"] = reason
        if state == "online":
            status.update(ts=time.time(), protocol=protocol)
            if self.software:
                status["software"] = self.software
        else:
            status["ts"] = time.time()
        return status

    def last_will(self, protocol: str) -> dict[str, Any]:
        """`offline` (lost), left with the broker at connect time."""
        will = self.document("offline", protocol, reason="lost")
        will.pop("ts")  # the broker sends it later; a connect-time stamp would mislead
        return will
