"""Device keys: the template data key (AES-256-GCM) and the signing key (Ed25519).

Both are files only the service user can read (0600), made at provisioning. A key
file readable by group or others is refused, never silently used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from device.errors import BlinkpayError

DATA_KEY_BYTES = 32  # AES-256


class KeyFileError(BlinkpayError):
    """A key file is missing, malformed or too widely readable."""


@dataclass(frozen=True)
class DataKey:
    key: bytes
    key_id: str  # short fingerprint stored with the shard, to detect a wrong key file

    @classmethod
    def from_bytes(cls, key: bytes) -> DataKey:
        if len(key) != DATA_KEY_BYTES:
            raise KeyFileError(f"data key must be {DATA_KEY_BYTES} bytes, got {len(key)}")
        return cls(key, hashlib.sha256(b"blinkpay-data-key" + key).hexdigest()[:16])

    @classmethod
    def generate(cls) -> DataKey:
        return cls.from_bytes(secrets.token_bytes(DATA_KEY_BYTES))


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
    return path.read_bytes()


def generate_data_key(path: Path, overwrite: bool = False) -> DataKey:
    key = DataKey.generate()
    write_private_file(path, key.key, overwrite=overwrite)
    return key


def load_data_key(path: Path) -> DataKey:
    return DataKey.from_bytes(read_private_file(path))


def generate_signing_key(path: Path, overwrite: bool = False) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(path, pem, overwrite=overwrite)
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    data = read_private_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, expected an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def canonical_json(document: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the document without its `signature`, keys sorted."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_document(document: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Base64 Ed25519 signature over canonical_json(document)."""
    return base64.b64encode(key.sign(canonical_json(document))).decode("ascii")


def verify_document(document: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    try:
        signature = base64.b64decode(document.get("signature", ""), validate=True)
        public_key.verify(signature, canonical_json(document))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class KeyPaths:
    data_key: Path
    signing_key: Path


def key_paths(data_dir: Path, data_key_file: Path, signing_key_file: Path) -> KeyPaths:
    """Relative key paths are under the data directory."""
    return KeyPaths(Path(data_dir) / data_key_file, Path(data_dir) / signing_key_file)


def provision_keys(paths: KeyPaths, overwrite: bool = False) -> tuple[DataKey, Ed25519PrivateKey]:
    """Make both device keys (0600). Refuses to replace existing keys unless told to."""
    return (
        generate_data_key(paths.data_key, overwrite=overwrite),
        generate_signing_key(paths.signing_key, overwrite=overwrite),
    )
