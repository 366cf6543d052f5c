"""The terminal's `retemplate` message (docs/asyncapi.yaml): during an embedder migration,
the new embedder's template of a face the terminal was just paid by, sealed to the host's
X25519 key (device/crypto/template_box.seal_to_host) and signed by the terminal, bound to
the shard, the device and the transaction."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from device.crypto.template_box import retemplate_context, seal_to_host
from device.errors import BlinkpayError


def host_public_key(host_key_b64: str) -> X25519PublicKey:
    """The host key a migrating shard's messages carry (base64 of the raw 32 bytes)."""
    try:
        return X25519PublicKey.from_public_bytes(base64.b64decode(host_key_b64, validate=True))
    except (binascii.Error, ValueError):
        raise BlinkpayError("the shard's migration.host_key is not an X25519 key") from None


def retemplate_message(
    *,
    device_id: str,
    shard_id: str,
    tx_id: str,
    token: str,
    vector: np.ndarray,
    embedder_version: str,
    frames: int,
    host_key_b64: str,
    sign: Callable[[dict[str, Any]], str],
    now: float | None = None,
) -> dict[str, Any]:
    vec = np.asarray(vector, dtype="<f4").reshape(-1)
    key_wrap, sealed = seal_to_host(
        host_public_key(host_key_b64),
        vec.tobytes(),
        retemplate_context(shard_id, device_id, tx_id),
        token,
    )
    message: dict[str, Any] = {
        "v": 1,
        "device_id": device_id,
        "shard_id": shard_id,
        "tx_id": tx_id,
        "token": token,
        "embedder_version": embedder_version,
        "dim": int(vec.shape[0]),
        "frames": int(frames),
        "key_wrap": key_wrap,
        "sealed_b64": sealed,
        "ts": time.time() if now is None else now,
    }
    message["signature"] = sign(message)
    return message
