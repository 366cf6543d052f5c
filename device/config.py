"""The terminal's one validated configuration model.

Loaded from TOML (default /etc/blinkpay/config.toml), then overridden by
BLINKPAY_<SECTION>__<KEY> environment variables (values parsed as JSON when they
parse, else taken as strings). Every key has a default; unknown keys are errors, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from device.core.config import LivenessConfig, MatchConfig, PaymentConfig, SessionConfig
from device.errors import BlinkpayError
from device.hw.config import HardwareConfig
from device.net.config import MqttConfig
from device.paths import DEFAULT_CONFIG_PATH, DEFAULT_DATA_DIR
from device.store.config import StoreConfig
from device.vending.config import VendingConfig
from device.vision.config import VisionConfig

ENV_PREFIX = "BLINKPAY_"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DeviceConfig(Section):
    id: str = Field(default="blinkpay-dev-0001", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    mode: Literal["turnstile", "vending"] = "turnstile"
    data_dir: Path = DEFAULT_DATA_DIR
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"


class Config(Section):
    device: DeviceConfig = Field(default_factory=DeviceConfig)
    vision: VisionConfig = Field(default_factory=VisionConfig)
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    match: MatchConfig = Field(default_factory=MatchConfig)
    liveness: LivenessConfig = Field(default_factory=LivenessConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    payment: PaymentConfig = Field(default_factory=PaymentConfig)
    vending: VendingConfig = Field(default_factory=VendingConfig)  # device.mode = "vending"

    @model_validator(mode="after")
    def _host_answers_before_the_machine_gives_up(self) -> Config:
        # The reader denies a vend request on its own 1 s before the machine's patience
        # (vending.max_response_time_s) runs out; the host's answer, or the offline rules
        # after mqtt.auth_timeout_s, must come before that or no online sale could succeed.
        limit = self.vending.max_response_time_s - 1
        if self.device.mode == "vending" and self.mqtt.auth_timeout_s >= limit:
            raise ValueError(
                f"mqtt.auth_timeout_s ({self.mqtt.auth_timeout_s:g}) must be below "
                f"vending.max_response_time_s - 1 ({limit}): the reader denies first"
            )
        return self


class ConfigError(Exception):
    """A config problem, phrased for a field engineer: which key, which value, what is allowed."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    value = error.get("input")
    shown = "(missing)" if error["type"] == "missing" else repr(value)
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{key}: unknown key (value {shown}); check the spelling"
    if error["type"] == "value_error":  # a section's own rule, which names its keys
        rule = str(error["msg"]).removeprefix("Value error, ")
        return f"{key}: {rule}" if key else rule  # a rule across sections names them all
    return f"{key} = {shown}: {error['msg']}"


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if not all(re.fullmatch(r"[a-z0-9_]+", part) for part in path):
            continue
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return overrides


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_from_mapping(data: Mapping[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()], source) from None


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (absent file = all defaults), apply env overrides, validate."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"file not found: {path}"], source) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"not valid TOML: {exc}"], source) from None
    return config_from_mapping(_merge(data, _env_overrides(env)), source)


def load_terminal_config(path: Path | None) -> Config:
    """The config a command runs with: `path`, else the installed default when it exists, else
    built-in defaults; a problem is a BlinkpayError with one line a field engineer can act on."""
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    try:
        return load_config(path)
    except ConfigError as exc:
        raise BlinkpayError(str(exc)) from None
