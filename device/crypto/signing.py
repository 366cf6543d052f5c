"""Ed25519 signed envelopes: the backend signs shard, config and command bodies; the
terminal verifies them with the provisioned backend public key (and the host verifies the
terminal's transaction signatures the same way)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from device.net.schemas import PayloadRejected
from device.store.keys import canonical_json


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes: JSON with sorted keys, no spaces, UTF-8 (the store's device
    signatures use the same form; a body never has a `signature` key of its own)."""
    return canonical_json(body)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_bytes(private_key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(private_key.sign(data)).decode()


def verify_bytes(public_key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def seal(private_key: Ed25519PrivateKey, body: dict[str, Any]) -> dict[str, Any]:
    """Wrap `body` in a SignedEnvelope (docs/asyncapi.yaml)."""
    return {
        "v": 1,
        "alg": "Ed25519",
        "key_id": key_id(private_key.public_key()),
        "body": body,
        "sig": sign_bytes(private_key, canonical(body)),
    }


def open_envelope(public_key: Ed25519PublicKey, envelope: dict[str, Any]) -> dict[str, Any]:
    """The body of a schema-valid envelope, or PayloadRejected('bad_signature')."""
    if envelope.get("key_id") != key_id(public_key):
        raise PayloadRejected("bad_signature", "unknown key id")
    if not verify_bytes(public_key, canonical(envelope["body"]), envelope["sig"]):
        raise PayloadRejected("bad_signature", "signature does not verify")
    body: dict[str, Any] = envelope["body"]
    return body


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM (SubjectPublicKeyInfo) or raw 32-byte / 64-hex-digit Ed25519 public key file."""
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path}: not an Ed25519 public key")
        return key
    text = data.strip()
    raw = bytes.fromhex(text.decode()) if len(text) == 64 else data
    return Ed25519PublicKey.from_public_bytes(raw)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
