"""A terminal's config change as the console prepares it: partial TOML from the operator,
validated with the terminal's own config model, and the diff against what the terminal runs
(its defaults overlaid with the changes it applied from this console)."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from device.config import Config, ConfigError, config_from_mapping, merge_sections
from device.errors import BlinkpayError

MAX_TOML = 8192
MAX_SECTIONS = 16  # ConfigEnvelope body.config maxProperties


class ConfigRefused(BlinkpayError):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_partial(text: str) -> dict[str, Any]:
    """The operator's partial config, or ConfigRefused with what is wrong."""
    if len(text) > MAX_TOML:
        raise ConfigRefused(f"at most {MAX_TOML} characters", "config_too_long")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigRefused(f"not valid TOML: {exc}", "config_not_toml") from None
    if not data:
        raise ConfigRefused("nothing to change", "config_empty")
    if len(data) > MAX_SECTIONS or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigRefused(
            "give [section] tables of keys, e.g. [payment] fare = 300", "config_shape"
        )
    try:
        config_from_mapping(data, "the change")
    except ConfigError as exc:
        raise ConfigRefused(str(exc), "config_invalid") from None
    return data


def baseline(applied: list[dict[str, Any]]) -> dict[str, Any]:
    """Defaults overlaid with the applied changes, oldest first."""
    current = json.loads(Config().model_dump_json())
    for change in applied:
        current = merge_sections(current, change)
    return current


def diff(current: dict[str, Any], change: dict[str, Any], path: str = "") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, value in change.items():
        name = f"{path}{key}"
        old = current.get(key) if isinstance(current, dict) else None
        if isinstance(value, dict):
            rows.extend(diff(old if isinstance(old, dict) else {}, value, f"{name}."))
        else:
            rows.append({"key": name, "old": old, "new": value, "changed": old != value})
    return rows
