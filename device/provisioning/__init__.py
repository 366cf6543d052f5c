"""Provisioning a terminal: device keys, the PIN key and the config file, in one step.

`blinkpay provision` and the demo's throw-away terminals both call `provision`.

Safe to repeat: existing keys are kept (and reported so) unless `force`, and the settings
are merged into an existing config file (install.sh writes one), so the documented command
can be run again. Everything that could stop it is checked before the first file is
written, and the config is replaced atomically, so a refusal never leaves a half-provisioned
terminal. Run as root for an installed terminal, `owner` (the service user) gets the keys
and the data directory, and the config becomes root:<owner's group> 0640.

The key files are keys.py's, the config file config_file.py's; this is the one step.
"""

from __future__ import annotations

import os
import pwd
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.config import Config, ConfigError, config_from_mapping, merge_sections
from device.crypto.signing import KeyFileError, write_private_file
from device.errors import BlinkpayError
from device.provisioning.config_file import (
    check_writable,
    existing_settings,
    identity_change,
    plain_tables,
    to_toml,
    with_broker_user,
    write_config,
)
from device.provisioning.keys import (
    key_problems,
    make_keys,
    mqtt_file_problems,
    read_pin_key,
    write_public_keys,
)
from device.store.terminal_store import db_path, ledger_anchor_path, store_key_paths

# to_toml, key_problems, read_pin_key: the CLI, the app and the tests use them from here
__all__ = ["Owner", "Provisioned", "key_problems", "provision", "read_pin_key", "to_toml"]


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


def _chown_tree(owner: Owner, *paths: Path) -> None:
    for path in paths:
        if path.exists():
            os.chown(path, owner.uid, owner.gid)


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
    existing = existing_settings(config_path)
    settings = merge_sections(existing, plain_tables(sections))
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
    change = identity_change(existing, config, data_dir)
    if change is not None:
        if not force:
            raise BlinkpayError(
                f"this terminal is provisioned already; this would change its {change}: its "
                "ledger, keys and registration at the host are the old one's. Give --force "
                "to do it (new device keys; register them at the host again)"
            )
        warnings.append(f"re-provisioned with another identity ({change}): new device keys")
    if mqtt_password is not None:
        config, settings = with_broker_user(settings, config, mqtt_password)
    check_writable(config_path, data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        public_pem, box_pem, made, kept = make_keys(config, pin_key, force)
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
    write_config(config_path, to_toml(settings), owner.gid if owner else None)
    pin_key_file = data_dir / config.store.pin_key_file
    name = owner.name if owner else None
    key_folder = store_key_paths(config.store, data_dir).signing_key.parent
    public_file, box_file = write_public_keys(key_folder, public_pem, box_pem)
    if owner is not None:
        _chown_tree(owner, public_file, box_file)
    return Provisioned(
        config_path, config, public_pem, pin_key_file, made, kept, name, box_pem,
        public_file, box_file, warnings,
    )  # fmt: skip
