"""config/set on the running terminal: a signed partial config, validated with the
terminal's own model, persisted to the remote overlay in the data directory (atomic,
fsynced, 0600; /etc stays read-only under systemd), then applied live where that is safe
(log level, match thresholds: read afresh at every use) or by a clean restart when the
session is idle (everything the session, the hardware or the network captured at start).

Never remotely: the terminal's identity and trust anchors (device id, data dir, broker
url and prefix, shard, TLS and key files: any file path), nor how it may be rebooted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from device.config import Config, ConfigError, env_overrides, load_config, write_overlay
from device.net.remote_control import ConfigOutcome
from device.remote.loop_hooks import TerminalLoop

log = logging.getLogger(__name__)

ALL = frozenset({"*"})
REFUSED: dict[str, frozenset[str]] = {
    "device": frozenset({"id", "data_dir", "remote_reboot"}),
    "store": ALL,
    "hardware": frozenset({"backend", "pins"}),  # which pin is the gate is wiring, not policy
    "mqtt": frozenset({"enabled", "url", "prefix", "shard_id", "protocol", "command_max_age_s"}),
}
LIVE: dict[str, frozenset[str]] = {"device": frozenset({"log_level"}), "match": ALL}


def _keys(partial: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in partial.items():
        if isinstance(value, Mapping) and value:
            keys += _keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def _in(table: dict[str, frozenset[str]], key: str) -> bool:
    section, _, rest = key.partition(".")
    names = table.get(section, frozenset())
    return names == ALL or rest.split(".", 1)[0] in names


def _is_path_setting(key: str) -> bool:
    """A file path anywhere in the model (key files, certificates, models, video)."""
    model: type[BaseModel] | None = Config
    for part in key.split("."):
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return False
        annotation = fields[part].annotation
        if "Path" in str(annotation):
            return True
        model = annotation if isinstance(annotation, type) else None
    return False


def refusals(partial: Mapping[str, Any], env: Mapping[str, Any]) -> list[str]:
    """Why (if at all) this partial config may not be applied remotely."""
    if not all(isinstance(v, Mapping) for v in partial.values()):
        return ['config must be sections of keys, e.g. {"payment": {"fare": 300}}']
    problems = []
    masked = set(_keys(env))
    for key in _keys(partial):
        if _in(REFUSED, key) or _is_path_setting(key):
            problems.append(f"{key} cannot change remotely")
        elif key in masked:
            problems.append(f"{key} is set by the environment, which would override it")
    return problems


class RemoteConfig:
    """The ConfigApplier of device.net's RemoteControl (runs on the network worker)."""

    def __init__(self, config_path: Path | None, config: Config, loop: TerminalLoop) -> None:
        self.config_path, self.data_dir, self.loop = config_path, config.device.data_dir, loop

    def __call__(self, partial: dict[str, Any], version: int) -> ConfigOutcome:
        problems = refusals(partial, env_overrides())
        if problems:
            return ConfigOutcome(False, "; ".join(problems))
        try:
            new = load_config(self.config_path, extra=partial)
        except ConfigError as exc:
            return ConfigOutcome(False, "; ".join(exc.problems))
        write_overlay(self.data_dir, partial, version)
        keys = _keys(partial)
        log.warning(
            "remote config version %d applied: %s",
            version,
            " ".join(keys),
            extra={"event": "config_applied", "version": version, "keys": keys},
        )
        if all(_in(LIVE, key) for key in keys):
            self.loop.call(lambda now: self._apply_live(new))
            return ConfigOutcome(True, "applied live")
        return ConfigOutcome(
            True,
            "saved; the terminal restarts to apply it when the session is idle",
            after=lambda: self.loop.restart_when_idle(f"config version {version}"),
        )

    def _apply_live(self, new: Config) -> None:
        """Main thread: the terminal reads these afresh at every use."""
        logging.getLogger().setLevel(new.device.log_level)
        terminal = self.loop.terminal
        terminal.config = terminal.config.model_copy(update={"match": new.match})
