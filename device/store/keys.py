"""Device keys: the template data key (AES-256-GCM) and the signing key (Ed25519).

Both are files only the service user can read (0600), made at provisioning; reading and
writing key files is device.crypto.signing's.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.crypto.signing import (
    KeyFileError,
    generate_signing_key,
    read_private_file,
    write_private_file,
)

DATA_KEY_BYTES = 32  # AES-256


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


def generate_data_key(path: Path, overwrite: bool = False) -> DataKey:
    key = DataKey.generate()
    write_private_file(path, key.key, overwrite=overwrite)
    return key


def load_data_key(path: Path) -> DataKey:
    return DataKey.from_bytes(read_private_file(path))


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
