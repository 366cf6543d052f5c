"""Who said it: every state-changing message a terminal sends the host is signed with the
terminal's Ed25519 key, and checked here against the key the operator registered for the
device id in the topic, which must also be the device id in the payload (docs/security.md).

A message that fails is refused with a reason (a PayloadRejected: the link counts it and
logs one line without the payload) and never answered: a stranger learns nothing, not even
that the host is there.
"""

from __future__ import annotations

import threading
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from backend.db import HostDb
from device.crypto.signing import verify_document
from device.net.client import Inbound
from device.net.schemas import PayloadRejected
from device.net.topics import device_id_of


class DeviceKeys:
    """The registered Ed25519 keys by device id, parsed once (the PEM changes only when the
    operator registers the terminal again, which calls `forget`)."""

    def __init__(self, db: HostDb) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, Ed25519PublicKey | None]] = {}

    def key(self, device_id: str) -> Ed25519PublicKey | None:
        rows = self._db.query("SELECT public_key_pem FROM devices WHERE device_id = ?", [device_id])
        pem = rows[0]["public_key_pem"] if rows else None
        if pem is None:
            return None
        with self._lock:
            cached = self._keys.get(device_id)
            if cached is not None and cached[0] == pem:
                return cached[1]
        try:
            loaded = serialization.load_pem_public_key(pem.encode())
        except ValueError:
            loaded = None
        key = loaded if isinstance(loaded, Ed25519PublicKey) else None
        with self._lock:
            self._keys[device_id] = (pem, key)
        return key

    def forget(self, device_id: str) -> None:
        with self._lock:
            self._keys.pop(device_id, None)


class Gate:
    """The check every inbound handler runs first."""

    def __init__(self, prefix: str, keys: DeviceKeys) -> None:
        self.prefix = prefix
        self.keys = keys

    def device(self, message: Inbound) -> str:
        """The topic's device id; the payload must name the same one."""
        device_id = device_id_of(self.prefix, message.topic)
        if device_id is None or device_id != message.payload.get("device_id"):
            raise PayloadRejected("wrong_device", message.topic)
        return device_id

    def signed(self, message: Inbound) -> str:
        """The device id of a message signed (its `signature`) by that device's key."""
        device_id = self.device(message)
        key = self._registered(device_id)
        if not verify_document(message.payload, key):
            raise PayloadRejected("bad_signature", f"{device_id}: signature does not verify")
        return device_id

    def signed_row(self, message: Inbound) -> tuple[str, Ed25519PublicKey]:
        """A Transaction: the row `tx` is what the terminal signed (`signature` covers it)."""
        device_id = self.device(message)
        key = self._registered(device_id)
        tx: dict[str, Any] = message.payload["tx"]
        if not verify_document({**tx, "signature": message.payload["signature"]}, key):
            raise PayloadRejected("bad_signature", f"{device_id}: row signature does not verify")
        return device_id, key

    def _registered(self, device_id: str) -> Ed25519PublicKey:
        key = self.keys.key(device_id)
        if key is None:
            raise PayloadRejected("unknown_device", device_id)
        return key
