"""Signed envelopes on MQTT (docs/asyncapi.yaml SignedEnvelope): the host wraps shard,
config and command bodies; the terminal opens them with the provisioned host key."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from device.crypto.signing import canonical_json, key_id, sign_bytes, verify_bytes
from device.net.schemas import PayloadRejected


def seal(private_key: Ed25519PrivateKey, body: dict[str, Any]) -> dict[str, Any]:
    """Wrap `body` in a SignedEnvelope (a body never has a `signature` key of its own)."""
    return {
        "v": 1,
        "alg": "Ed25519",
        "key_id": key_id(private_key.public_key()),
        "body": body,
        "sig": sign_bytes(private_key, canonical_json(body)),
    }


def open_envelope(public_key: Ed25519PublicKey, envelope: dict[str, Any]) -> dict[str, Any]:
    """The body of a schema-valid envelope, or PayloadRejected('bad_signature')."""
    if envelope.get("key_id") != key_id(public_key):
        raise PayloadRejected("bad_signature", "unknown key id")
    if not verify_bytes(public_key, canonical_json(envelope["body"]), envelope["sig"]):
        raise PayloadRejected("bad_signature", "signature does not verify")
    body: dict[str, Any] = envelope["body"]
    return body
