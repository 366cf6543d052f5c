"""Ed25519 signing, canonical JSON and key files: the one place for all three.

The terminal signs its ledger rows; the host signs shard, config, command and answer
messages; each side verifies the other with a provisioned public key. What a signature
covers is always `canonical_json`: the document without its `signature` key, keys sorted,
no spaces, UTF-8. Private key files are 0600 and owned by the user that reads them; a key
readable by group or others is refused, never silently used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from device.errors import BlinkpayError

K = TypeVar("K")
P = TypeVar("P")


class KeyFileError(BlinkpayError):
    """A key file is missing, malformed or too widely readable."""


# --- what is signed ---------------------------------------------------------------------


def canonical_json(document: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the document without its `signature`, keys sorted."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key, so a message names the key it needs."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_bytes(private_key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(private_key.sign(data)).decode("ascii")


def verify_bytes(public_key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def sign_document(document: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Base64 Ed25519 signature over canonical_json(document)."""
    return sign_bytes(key, canonical_json(document))


def verify_document(document: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    signature = document.get("signature", "")
    if not isinstance(signature, str):
        return False
    return verify_bytes(public_key, canonical_json(document), signature)


# --- key files --------------------------------------------------------------------------


def write_private_file(path: Path, data: bytes, overwrite: bool = False) -> None:
    """Write a 0600 file atomically (temp file, fsync, rename) in a 0700 directory."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_private_file(path: Path) -> bytes:
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found; run `blinkpay provision`") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise KeyFileError(
            f"key file {path} is owned by uid {info.st_uid}, not by uid {os.getuid()} running "
            f"blinkpay; run as its owner (sudo -u blinkpay blinkpay ...) or `chown` it"
        )
    try:
        return path.read_bytes()
    except OSError as exc:  # mode 000, a directory, an I/O error: one line, not a traceback
        raise KeyFileError(f"key file {path} cannot be read: {exc.strerror or exc}") from None


def private_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return public_pem(key.public_key()).decode("ascii")


def generate_signing_key(path: Path, overwrite: bool = False) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    write_private_file(path, private_pem(key), overwrite=overwrite)
    return key


def pem_private_key(data: bytes, source: Path, kind: type[K]) -> K:
    """A PEM private key of `kind` (Ed25519 for signing, X25519 for sealed templates)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{source} is not a PEM private key: {exc}") from None
    if not isinstance(key, kind):
        expected = kind.__name__.removesuffix("PrivateKey")
        raise KeyFileError(f"{source} holds a {type(key).__name__}, expected an {expected} key")
    return key


def private_key_from_pem(data: bytes, source: Path) -> Ed25519PrivateKey:
    return pem_private_key(data, source, Ed25519PrivateKey)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """A private key file that only its owner can read (the terminal's and the host's)."""
    return private_key_from_pem(read_private_file(path), path)


def public_key_from_bytes(data: bytes, source: object, kind: type[P]) -> P:
    """A PEM (SubjectPublicKeyInfo) or raw 32-byte / 64-hex-digit public key of `kind`
    (Ed25519 for signatures, X25519 for sealed templates)."""
    name = kind.__name__.removesuffix("PublicKey")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
            if not isinstance(key, kind):
                raise KeyFileError(f"{source}: not an {name} public key")
            return key
        text = data.strip()
        raw = bytes.fromhex(text.decode()) if len(text) == 64 else data
        return kind.from_public_bytes(raw)  # type: ignore[attr-defined, no-any-return]
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{source}: not an {name} public key ({exc})") from None


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key file (PEM, raw or hex)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc
        raise KeyFileError(f"public key file {path} cannot be read: {reason}") from None
    return public_key_from_bytes(data, path, Ed25519PublicKey)
