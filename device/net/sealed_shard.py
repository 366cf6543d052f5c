"""Opening the templates of a shard message (device/crypto/template_box.py): the wire form
carries `sealed_b64` per template and a `key_wrap`; the store's form carries `vector_b64`.
The plain vectors exist only in memory on their way into the store, which seals them
again with the device's data key."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.crypto.template_box import SealError, open_template, unwrap_content_key
from device.net.schemas import PayloadRejected

VECTOR_OPS = ("add", "update")


class TemplateOpener:
    def __init__(self, device_id: str, key: X25519PrivateKey | None) -> None:
        self.device_id, self._key = device_id, key

    def snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """The snapshot in the store's form (records with vector_b64)."""
        records = snapshot["records"]
        opened = self._open(records, snapshot.get("key_wrap"), snapshot["shard_id"])
        rest = {k: v for k, v in snapshot.items() if k != "key_wrap"}
        return {**rest, "records": opened}

    def delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        """The delta in the store's form (add/update ops with vector_b64)."""
        sealed = [op for op in delta["ops"] if op["op"] in VECTOR_OPS]
        opened = iter(self._open(sealed, delta.get("key_wrap"), delta["shard_id"]))
        ops = [next(opened) if op["op"] in VECTOR_OPS else op for op in delta["ops"]]
        rest = {k: v for k, v in delta.items() if k != "key_wrap"}
        return {**rest, "ops": ops}

    def _open(
        self, items: list[dict[str, Any]], key_wrap: dict[str, Any] | None, shard_id: str
    ) -> list[dict[str, Any]]:
        if not items:
            return []
        if key_wrap is None:
            raise PayloadRejected("not_sealed", "templates without a key_wrap")
        if self._key is None:
            raise PayloadRejected("no_device_key", "this terminal has no X25519 key")
        try:
            content_key = unwrap_content_key(key_wrap, self.device_id, self._key, shard_id)
            return [self._vector(item, content_key, shard_id) for item in items]
        except SealError as exc:
            reason = "not_a_recipient" if "not a recipient" in str(exc) else "bad_seal"
            raise PayloadRejected(reason, str(exc)) from None

    @staticmethod
    def _vector(item: dict[str, Any], content_key: bytes, shard_id: str) -> dict[str, Any]:
        vector = open_template(content_key, item["sealed_b64"], shard_id, item["token"])
        rest = {k: v for k, v in item.items() if k != "sealed_b64"}
        return {**rest, "vector_b64": base64.b64encode(vector).decode("ascii")}
