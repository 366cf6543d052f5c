"""The terminal's config file as provisioning writes it: the settings merged into an
existing file, validated, checked for a change of identity, given the broker credential,
and replaced atomically with its mode and group set."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from device.config import Config, ConfigError, config_from_mapping
from device.errors import BlinkpayError
from device.store.terminal_store import store_key_paths

MQTT_PASSWORD_FILE = "keys/mqtt.password"  # under device.data_dir, 0600, the service user's
CONFIG_MODE = 0o640  # the service user's group reads it; it holds paths, not secrets


def plain_tables(values: dict[str, Any]) -> dict[str, Any]:
    """TOML tables as plain values: no None (TOML has no null), paths as strings."""
    return {
        k: plain_tables(v) if isinstance(v, dict) else str(v) if isinstance(v, Path) else v
        for k, v in values.items()
        if v is not None
    }


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    return "# Written by `blinkpay provision`; other keys keep their defaults.\n\n" + tomli_w.dumps(
        sections
    )


def existing_settings(config_path: Path) -> dict[str, Any]:
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


def check_writable(config_path: Path, data_dir: Path) -> None:
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


def write_config(path: Path, text: str, group: int | None) -> None:
    """Atomically: a temp file beside it, mode and group set, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, CONFIG_MODE)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
        if group is not None:
            os.fchown(fd, 0, group)  # root writes, the service user's group reads
    finally:
        os.close(fd)
    os.replace(tmp, path)


def identity_change(existing: dict[str, Any], config: Config, data_dir: Path) -> str | None:
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


def with_broker_user(
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
