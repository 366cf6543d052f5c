"""The terminal's key files: made (or kept) by provisioning, their public halves written
beside them for the host, and every key or certificate file `run` would load checked the
way it loads it (`blinkpay config check`)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.config import Config
from device.crypto.signing import (
    KeyFileError,
    generate_signing_key,
    load_public_key,
    load_signing_key,
    private_key_from_pem,
    public_key_pem,
    read_private_file,
    write_private_file,
)
from device.crypto.template_box import (
    box_key_from_pem,
    box_public_pem,
    generate_box_key,
    load_box_key,
)
from device.errors import BlinkpayError
from device.net.config import broker_password
from device.store.keys import generate_data_key, load_data_key
from device.store.ledger_chain import GENESIS, Anchor, write_anchor
from device.store.terminal_store import db_path, ledger_anchor_path, store_key_paths

KeyT = TypeVar("KeyT", Ed25519PrivateKey, X25519PrivateKey)
PIN_KEY_BYTES = 32  # AES-256 for the ISO 9564 format 4 PIN block


def _existing_key(path: Path, read: Callable[[bytes, Path], KeyT], what: str) -> KeyT:
    """A kept key, for its public half. Read directly: root re-provisioning an installed
    terminal reads a key the service user owns (`load_signing_key` refuses that)."""
    try:
        return read(path.read_bytes(), path)
    except OSError as exc:
        raise BlinkpayError(f"{path}: cannot use the existing {what} ({exc})") from None
    except KeyFileError as exc:
        raise BlinkpayError(f"{exc}; use --force to make new keys") from None


def make_keys(
    config: Config, pin_key: bytes | None, force: bool
) -> tuple[str, str, list[str], list[str]]:
    """Make missing keys (all of them under `force`, but never the data key of an existing
    database: its templates would be lost; `blinkpay db rekey` rotates that one)."""
    paths = store_key_paths(config.store, config.device.data_dir)
    pin_key_file = Path(config.device.data_dir) / config.store.pin_key_file
    made: list[str] = []
    kept: list[str] = []
    database = db_path(config.store, config.device.data_dir).exists()
    if not paths.data_key.exists() or (force and not database):
        generate_data_key(paths.data_key, overwrite=True)
        made.append("data key")
    else:
        kept.append("data key")
    if not paths.signing_key.exists() or force:
        signing_key = generate_signing_key(paths.signing_key, overwrite=True)
        made.append("signing key")
    else:
        signing_key = _existing_key(paths.signing_key, private_key_from_pem, "signing key")
        kept.append("signing key")
    if not pin_key_file.exists() or force or pin_key is not None:
        key = pin_key if pin_key is not None else secrets.token_bytes(PIN_KEY_BYTES)
        write_private_file(pin_key_file, key.hex().encode() + b"\n", overwrite=True)
        made.append("PIN key")
    else:
        kept.append("PIN key")
    box_file = Path(config.device.data_dir) / config.store.box_key_file
    if not box_file.exists() or force:
        box_key = generate_box_key(box_file, overwrite=True)
        made.append("X25519 key")
    else:
        box_key = _existing_key(box_file, box_key_from_pem, "X25519 key")
        kept.append("X25519 key")
    anchor = ledger_anchor_path(config.device.data_dir)
    if not anchor.exists():
        # From now on a database that disappears is noticed (device/store/ledger_chain.py).
        write_anchor(anchor, Anchor(None, 0, GENESIS))
    box_pem = box_public_pem(box_key).decode("ascii")
    return public_key_pem(signing_key), box_pem, made, kept


# Public halves beside the private keys, world-readable: what the operator registers at the
# host (`blinkpay-host device add ID device_ed25519.pub.pem --x25519 device_x25519.pub.pem`).
PUBLIC_KEY_NAMES = ("device_ed25519.pub.pem", "device_x25519.pub.pem")


def write_public_keys(folder: Path, signing_pem: str, box_pem: str) -> tuple[Path, Path]:
    paths = (folder / PUBLIC_KEY_NAMES[0], folder / PUBLIC_KEY_NAMES[1])
    for path, pem in zip(paths, (signing_pem, box_pem), strict=True):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(pem, encoding="ascii")
        tmp.chmod(0o644)
        os.replace(tmp, path)
    return paths


def mqtt_file_problems(config: Config) -> list[str]:
    """The broker files the config names (CA, client certificate and key, the host's public
    key), one line each naming the file and the fix, when MQTT is on: `run` would fail on
    them later with less to go on."""
    if not config.mqtt.enabled:
        return []
    what = {
        "ca_file": "the broker's CA certificate (--ca-file)",
        "cert_file": "this terminal's client certificate (--cert-file)",
        "key_file": "the key of the client certificate (--key-file)",
        "backend_public_key_file": "the host's signing.pub.pem (--backend-key)",
    }
    problems = []
    for key, purpose in what.items():
        path = getattr(config.mqtt, key)
        if path is None:
            continue
        path = Path(path)
        if not path.exists():
            problems.append(
                f"mqtt.{key} {path}: no such file; copy {purpose} there, or provision again "
                "with the right path"
            )
        elif not path.is_file():
            problems.append(f"mqtt.{key} {path}: not a file; give {purpose}")
        elif not os.access(path, os.R_OK):
            problems.append(
                f"mqtt.{key} {path}: permission denied; make it readable by the service user "
                "(chgrp blinkpay, chmod 0640)"
            )
    if (config.mqtt.cert_file is None) != (config.mqtt.key_file is None):
        problems.append(
            "mqtt.cert_file and mqtt.key_file go together (mutual TLS): give both or neither"
        )
    return problems


def read_pin_key(path: Path) -> bytes:
    """The AES PIN key shared with the host (hex in a 0600 file, made by provision)."""
    raw = read_private_file(path).strip()
    try:
        key = bytes.fromhex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise BlinkpayError(f"{path}: the PIN key must be hex digits") from None
    if len(key) not in (16, 24, 32):
        raise BlinkpayError(f"{path}: the PIN key must be 16, 24 or 32 bytes")
    return key


def key_problems(config: Config) -> list[str]:
    """Every key file `run` would load, loaded the same way: missing, unreadable, too widely
    readable or not a key is a problem here, so `config check` fails where `run` would."""
    data_dir = Path(config.device.data_dir)
    paths = store_key_paths(config.store, data_dir)
    loaders: list[tuple[str, Path | None, Any]] = [
        ("store.data_key_file", paths.data_key, load_data_key),
        ("store.signing_key_file", paths.signing_key, load_signing_key),
        ("store.pin_key_file", data_dir / config.store.pin_key_file, read_pin_key),
        ("store.box_key_file", data_dir / config.store.box_key_file, load_box_key),
    ]
    problems = mqtt_file_problems(config)
    if config.mqtt.enabled:
        backend = config.mqtt.backend_public_key_file
        if backend is None or Path(backend).exists():  # a missing one is said above
            loaders.append(("mqtt.backend_public_key_file", backend, load_public_key))
        if config.mqtt.password_file is not None:
            loaders.append(("mqtt.password_file", config.mqtt.password_file, broker_password))
    for key, path, load in loaders:
        if path is None:
            problems.append(f"{key}: not set (run `blinkpay provision --backend-key ...`)")
            continue
        try:
            load(path)
        except BlinkpayError as exc:
            problems.append(f"{key}: {exc}")
    return problems
