"""Provisioning a terminal: device keys, the PIN key and the config file, in one step.

`blinkpay provision` and the demo's throw-away terminals both call `provision`.

Safe to repeat: existing keys are kept (and reported so) unless `force`, and the settings
are merged into an existing config file (install.sh writes one), so the documented command
can be run again. Everything that could stop it is checked before the first file is
written, and the config is replaced atomically, so a refusal never leaves a half-provisioned
terminal. Run as root for an installed terminal, `owner` (the service user) gets the keys
and the data directory, and the config becomes root:<owner's group> 0640.
"""

from __future__ import annotations

import os
import pwd
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.config import Config, ConfigError, config_from_mapping, merge_sections
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

MQTT_PASSWORD_FILE = "keys/mqtt.password"  # under device.data_dir, 0600, the service user's
PIN_KEY_BYTES = 32  # AES-256 for the ISO 9564 format 4 PIN block
CONFIG_MODE = 0o640  # the service user's group reads it; it holds paths, not secrets


@dataclass(frozen=True)
class Owner:
    """Who the keys belong to (the service user) and whose group reads the config."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> Owner:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise BlinkpayError(
                f"no user {name!r} on this machine (install.sh creates the service user "
                "`blinkpay`); pass --owner with an existing user"
            ) from None
        return cls(name, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True)
class Provisioned:
    config_path: Path
    config: Config
    public_key_pem: str
    pin_key_file: Path
    made: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    owner: str | None = None
    box_public_key_pem: str = ""
    public_key_file: Path | None = None  # the two public keys, also as files to hand over
    box_public_key_file: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "config": str(self.config_path),
            "device_id": self.config.device.id,
            "mode": self.config.device.mode,
            "hardware": self.config.hardware.backend,
            "data_dir": str(self.config.device.data_dir),
            "mqtt": self.config.mqtt.url if self.config.mqtt.enabled else "disabled",
            "shard_id": self.config.mqtt.shard_id,
            "pin_key_file": str(self.pin_key_file),
            "keys_made": ", ".join(self.made) or "none",
            "keys_kept": ", ".join(self.kept) or "none",
            "keys_owner": self.owner or "the user running provision",
            "device_public_key_file": str(self.public_key_file),
            "device_x25519_public_key_file": str(self.box_public_key_file),
            "device_public_key": self.public_key_pem,
            "device_x25519_public_key": self.box_public_key_pem,
        }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """TOML tables as plain values: no None (TOML has no null), paths as strings."""
    return {
        k: _plain(v) if isinstance(v, dict) else str(v) if isinstance(v, Path) else v
        for k, v in values.items()
        if v is not None
    }


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    return "# Written by `blinkpay provision`; other keys keep their defaults.\n\n" + tomli_w.dumps(
        sections
    )


def _existing_settings(config_path: Path) -> dict[str, Any]:
    """The config file's tables (install.sh's defaults, an earlier provision), or {}."""
    try:
        return tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise BlinkpayError(f"{config_path} is a directory; give the config file's path") from None
    except PermissionError:
        raise BlinkpayError(f"{config_path}: permission denied; run provision as root") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BlinkpayError(f"{config_path}: not valid TOML ({exc}); fix or remove it") from None


def _check_writable(config_path: Path, data_dir: Path) -> None:
    """Refuse before any key is written when either destination cannot be written."""
    if data_dir.exists() and not data_dir.is_dir():
        raise BlinkpayError(f"--data-dir {data_dir} is a file; give a directory")
    folder = config_path.parent
    while not folder.exists():  # the nearest existing ancestor must let us create it
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise BlinkpayError(
            f"cannot write {config_path} ({folder} is not writable by this user): "
            "run provision as root (sudo blinkpay provision ...)"
        )


def _write_config(path: Path, text: str, owner: Owner | None) -> None:
    """Atomically: a temp file beside it, mode and owner set, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, CONFIG_MODE)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
        if owner is not None:
            os.fchown(fd, 0, owner.gid)  # root writes, the service user's group reads
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _chown_tree(owner: Owner, *paths: Path) -> None:
    for path in paths:
        if path.exists():
            os.chown(path, owner.uid, owner.gid)


def _existing_signing_key(path: Path) -> Ed25519PrivateKey:
    """The kept signing key, for its public half. Read directly: root re-provisioning an
    installed terminal reads a key the service user owns (`load_signing_key` refuses that)."""
    try:
        return private_key_from_pem(path.read_bytes(), path)
    except OSError as exc:
        raise BlinkpayError(f"{path}: cannot use the existing signing key ({exc})") from None
    except KeyFileError as exc:
        raise BlinkpayError(f"{exc}; use --force to make new keys") from None


def _existing_box_key(path: Path) -> X25519PrivateKey:
    """The kept X25519 key, read directly for the same reason as the signing key."""
    try:
        return box_key_from_pem(path.read_bytes(), path)
    except OSError as exc:
        raise BlinkpayError(f"{path}: cannot use the existing X25519 key ({exc})") from None
    except KeyFileError as exc:
        raise BlinkpayError(f"{exc}; use --force to make new keys") from None


def _make_keys(
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
        signing_key = _existing_signing_key(paths.signing_key)
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
        box_key = _existing_box_key(box_file)
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


def _write_public_keys(folder: Path, signing_pem: str, box_pem: str) -> tuple[Path, Path]:
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


def _identity_change(existing: dict[str, Any], config: Config, data_dir: Path) -> str | None:
    """What re-provisioning would change about who this terminal is, or None."""
    keys = store_key_paths(config.store, data_dir)
    if not keys.signing_key.exists():
        return None  # nothing made yet: a first provision
    changes = []
    before_id = existing.get("device", {}).get("id")
    if before_id is not None and before_id != config.device.id:
        changes.append(f"device id {before_id} -> {config.device.id}")
    before_shard = existing.get("mqtt", {}).get("shard_id", Config().mqtt.shard_id)
    if existing and before_shard != config.mqtt.shard_id:
        changes.append(f"shard {before_shard} -> {config.mqtt.shard_id}")
    return ", ".join(changes) or None


def provision(
    config_path: Path,
    sections: dict[str, dict[str, Any]],
    *,
    pin_key: bytes | None = None,
    force: bool = False,
    owner: Owner | None = None,
    mqtt_password: str | None = None,
) -> Provisioned:
    """Validate the settings, make the keys under device.data_dir, write the config file.

    sections: TOML sections as dicts (device, mqtt, ...), merged into an existing config
    file. pin_key: the host's PIN key (None: keep the existing one, or make one). Keeps
    existing keys unless `force`. owner: the service user, when run as root.
    mqtt_password: the broker password `blinkpay-host` issued to this terminal: written to
    MQTT_PASSWORD_FILE (0600, the owner's), with the device id as the broker user name.
    """
    if pin_key is not None and len(pin_key) not in (16, 24, 32):
        raise BlinkpayError("the PIN key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits)")
    existing = _existing_settings(config_path)
    settings = merge_sections(existing, _plain(sections))
    if not settings.get("device", {}).get("id"):  # a first provision without --device-id
        settings.setdefault("device", {})["id"] = f"blinkpay-{secrets.token_hex(4)}"
    try:
        config = config_from_mapping(settings, "provision")
    except ConfigError as exc:
        raise BlinkpayError(str(exc)) from None
    problems = mqtt_file_problems(config)
    if problems:
        raise BlinkpayError(problems[0])
    data_dir = Path(config.device.data_dir)
    warnings = []
    change = _identity_change(existing, config, data_dir)
    if change is not None:
        if not force:
            raise BlinkpayError(
                f"this terminal is provisioned already; this would change its {change}: its "
                "ledger, keys and registration at the host are the old one's. Give --force "
                "to do it (new device keys; register them at the host again)"
            )
        warnings.append(f"re-provisioned with another identity ({change}): new device keys")
    if mqtt_password is not None:
        config, settings = _with_broker_user(settings, config, mqtt_password)
    _check_writable(config_path, data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        public_pem, box_pem, made, kept = _make_keys(config, pin_key, force)
    except KeyFileError as exc:
        raise BlinkpayError(f"{exc} (use --force to make new keys)") from None
    if owner is not None:
        keys = store_key_paths(config.store, config.device.data_dir)
        pin_file = data_dir / config.store.pin_key_file
        _chown_tree(owner, data_dir, keys.data_key.parent, keys.data_key, keys.signing_key)
        _chown_tree(owner, data_dir / config.store.box_key_file)
        _chown_tree(owner, pin_file.parent, pin_file, db_path(config.store, config.device.data_dir))
        _chown_tree(owner, ledger_anchor_path(config.device.data_dir))
    if mqtt_password is not None and config.mqtt.password_file is not None:
        password = mqtt_password.encode() + b"\n"
        write_private_file(config.mqtt.password_file, password, overwrite=True)
        if owner is not None:
            _chown_tree(owner, config.mqtt.password_file.parent, config.mqtt.password_file)
    _write_config(config_path, to_toml(settings), owner)
    pin_key_file = data_dir / config.store.pin_key_file
    name = owner.name if owner else None
    key_folder = store_key_paths(config.store, data_dir).signing_key.parent
    public_file, box_file = _write_public_keys(key_folder, public_pem, box_pem)
    if owner is not None:
        _chown_tree(owner, public_file, box_file)
    return Provisioned(
        config_path, config, public_pem, pin_key_file, made, kept, name, box_pem,
        public_file, box_file, warnings,
    )  # fmt: skip


def _with_broker_user(
    settings: dict[str, Any], config: Config, password: str
) -> tuple[Config, dict[str, Any]]:
    """The settings with the broker credential: user name = device id, the password file."""
    if not password or any(c.isspace() for c in password):
        raise BlinkpayError("the broker password must be one word with no spaces")
    path = Path(config.device.data_dir) / MQTT_PASSWORD_FILE
    mqtt = {**settings.get("mqtt", {}), "username": config.device.id, "password_file": str(path)}
    settings = {**settings, "mqtt": mqtt}
    try:
        return config_from_mapping(settings, "provision"), settings
    except ConfigError as exc:
        raise BlinkpayError(str(exc)) from None


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
