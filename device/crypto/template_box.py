"""Templates encrypted on the wire: each shard message (snapshot or delta) has its own
random AES-256-GCM content key; every template in it is sealed with that key, and the key
is wrapped to each registered device of the shard with X25519 (one ephemeral key per
message, HKDF-SHA256 per recipient, AES-256-GCM). The host still signs the whole message.
A subscriber without a device's X25519 private key sees only ciphertext.

Key files: the device's X25519 private key is a 0600 PEM beside its Ed25519 key (made by
`blinkpay provision`); the host learns the public half at registration.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from device.crypto.signing import (
    pem_private_key,
    public_key_from_bytes,
    read_private_file,
    write_private_file,
)
from device.errors import BlinkpayError

ALG = "X25519-HKDF-SHA256-A256GCM"
_INFO = b"blinkpay shard content key v1"
HOST_RECIPIENT = "host"  # the recipient id of what a terminal seals to the host
_ZERO_NONCE = bytes(12)  # safe: every wrapping key is fresh (new ephemeral key per message)


class SealError(BlinkpayError):
    """A template or key that cannot be opened (not for this device, or tampered)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise SealError(f"{what} is not base64") from None


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _kek(shared: bytes, epk: bytes, recipient: bytes, context: bytes) -> bytes:
    info = _INFO + b"|" + epk + recipient + b"|" + context
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def new_content_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_content_key(
    content_key: bytes, recipients: list[tuple[str, X25519PublicKey]], shard_id: str
) -> dict[str, Any]:
    """The KeyWrap object of docs/asyncapi.yaml: the key wrapped to each device id."""
    ephemeral = X25519PrivateKey.generate()
    epk = _raw(ephemeral.public_key())
    wrapped = []
    for device_id, public_key in recipients:
        context = f"{shard_id}|{device_id}".encode()
        kek = _kek(ephemeral.exchange(public_key), epk, _raw(public_key), context)
        sealed = AESGCM(kek).encrypt(_ZERO_NONCE, content_key, context)
        wrapped.append({"device_id": device_id, "wrapped": _b64(sealed)})
    return {"alg": ALG, "epk": _b64(epk), "recipients": wrapped}


def unwrap_content_key(
    key_wrap: dict[str, Any], device_id: str, private_key: X25519PrivateKey, shard_id: str
) -> bytes:
    entry = next((r for r in key_wrap["recipients"] if r["device_id"] == device_id), None)
    if entry is None:
        raise SealError(f"{device_id} is not a recipient (register its X25519 key at the host)")
    epk = _unb64(key_wrap["epk"], "epk")
    context = f"{shard_id}|{device_id}".encode()
    try:
        peer = X25519PublicKey.from_public_bytes(epk)
        kek = _kek(private_key.exchange(peer), epk, _raw(private_key.public_key()), context)
        return AESGCM(kek).decrypt(_ZERO_NONCE, _unb64(entry["wrapped"], "wrapped key"), context)
    except (InvalidTag, ValueError):
        raise SealError("the content key does not open with this device's key") from None


def _aad(shard_id: str, token: str) -> bytes:
    return f"blinkpay template|{shard_id}|{token}".encode()


def seal_template(content_key: bytes, vector: bytes, shard_id: str, token: str) -> str:
    """base64(nonce || AES-256-GCM(vector bytes)), bound to its shard and token."""
    nonce = os.urandom(12)
    return _b64(nonce + AESGCM(content_key).encrypt(nonce, vector, _aad(shard_id, token)))


def open_template(content_key: bytes, sealed_b64: str, shard_id: str, token: str) -> bytes:
    blob = _unb64(sealed_b64, "sealed template")
    if len(blob) < 12 + 16:
        raise SealError(f"sealed template of {token!r} is too short")
    try:
        return AESGCM(content_key).decrypt(blob[:12], blob[12:], _aad(shard_id, token))
    except InvalidTag:
        raise SealError(f"sealed template of {token!r} does not open") from None


def retemplate_context(shard_id: str, device_id: str, tx_id: str) -> str:
    """What a terminal's new-version template toward the host is bound to: its shard, the
    sending device and the transaction it was paid in (docs/matching.md, migration)."""
    return f"retemplate|{shard_id}|{device_id}|{tx_id}"


def seal_to_host(
    host_key: X25519PublicKey, vector: bytes, context: str, token: str
) -> tuple[dict[str, Any], str]:
    """(key_wrap, sealed_b64): the templates' own primitives, the other way round: a fresh
    content key wrapped to the host's X25519 key, the vector sealed with it."""
    content_key = new_content_key()
    key_wrap = wrap_content_key(content_key, [(HOST_RECIPIENT, host_key)], context)
    return key_wrap, seal_template(content_key, vector, context, token)


def open_from_device(
    host_key: X25519PrivateKey,
    key_wrap: dict[str, Any],
    sealed_b64: str,
    context: str,
    token: str,
) -> bytes:
    """The host opens what `seal_to_host` sealed (SealError when it does not open)."""
    try:
        content_key = unwrap_content_key(key_wrap, HOST_RECIPIENT, host_key, context)
    except (KeyError, TypeError):
        raise SealError("malformed key_wrap") from None
    return open_template(content_key, sealed_b64, context, token)


# -- key files ----------------------------------------------------------------------------


def generate_box_key(path: Path, overwrite: bool = False) -> X25519PrivateKey:
    key = X25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(path, pem, overwrite=overwrite)
    return key


def box_key_from_pem(data: bytes, source: Path) -> X25519PrivateKey:
    return pem_private_key(data, source, X25519PrivateKey)


def load_box_key(path: Path) -> X25519PrivateKey:
    return box_key_from_pem(read_private_file(path), path)


def box_public_pem(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_box_public_key(data: bytes, source: str) -> X25519PublicKey:
    """A PEM (SubjectPublicKeyInfo) or raw 32-byte / 64-hex-digit X25519 public key."""
    return public_key_from_bytes(data, source, X25519PublicKey)
