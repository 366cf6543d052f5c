"""A terminal's config change as the console prepares it: partial TOML from the operator,
validated with the terminal's own config model, and the diff against what the terminal runs
(its defaults overlaid with the changes it applied from this console)."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from backend.console.i18n import N_
from device.config import Config, ConfigError, config_from_mapping, merge_sections
from device.errors import TranslatableError

MAX_TOML = 8192
MAX_SECTIONS = 16  # ConfigEnvelope body.config maxProperties


class ConfigRefused(TranslatableError):
    """A config change refused: an N_ message with its arguments and the counted reason.
    What TOML or the config model says is wrong stays in English ({error})."""


def parse_partial(text: str) -> dict[str, Any]:
    """The operator's partial config, or ConfigRefused with what is wrong."""
    if len(text) > MAX_TOML:
        raise ConfigRefused(N_("at most {most} characters"), "config_too_long", {"most": MAX_TOML})
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigRefused(
            N_("not valid TOML: {error}"), "config_not_toml", {"error": str(exc)}
        ) from None
    if not data:
        raise ConfigRefused(N_("nothing to change"), "config_empty")
    if len(data) > MAX_SECTIONS or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigRefused(
            N_("give [section] tables of keys, e.g. [payment] fare = 300"), "config_shape"
        )
    try:
        config_from_mapping(data, "the change")
    except ConfigError as exc:
        problems = "; ".join(exc.problems)  # the config model's words, in English
        raise ConfigRefused(
            N_("the change: {problems}"), "config_invalid", {"problems": problems}
        ) from None
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
