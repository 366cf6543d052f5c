"""The terminal's one validated configuration model.

Loaded from TOML (default /etc/blinkpay/config.toml), then the remote overlay (the
partial configs the host sent on config/set, kept in `device.data_dir`/remote-config.json:
the service may only write its data directory, /etc stays read-only under systemd), then
overridden by BLINKPAY_<SECTION>__<KEY> environment variables (values parsed as JSON when
they parse, else taken as strings). Every key has a default; unknown keys are errors, so
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

from device.core.config import (
    ChallengeConfig,
    LivenessConfig,
    MatchConfig,
    PaymentConfig,
    SessionConfig,
    Settings,
)
from device.core.match import CALIBRATED
from device.crypto.signing import write_private_file
from device.errors import BlinkpayError
from device.hw.config import HardwareConfig
from device.net.config import MqttConfig
from device.net.schemas import ID_PATTERN
from device.paths import DEFAULT_CONFIG_PATH, DEFAULT_DATA_DIR
from device.store.config import StoreConfig
from device.vending.config import VendingConfig
from device.vision.config import VisionConfig

ENV_PREFIX = "BLINKPAY_"
OVERLAY_FILE = "remote-config.json"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DeviceConfig(Section):
    id: str = Field(default="blinkpay-dev-0001", pattern=ID_PATTERN)
    mode: Literal["turnstile", "vending"] = "turnstile"
    data_dir: Path = DEFAULT_DATA_DIR
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # The remote `reboot` command: "restart" the service (exit code 75, systemd starts it
    # again), "reboot" the system (`systemctl reboot`, needs a polkit rule for the service
    # user), or "off". Under `run --sim` it is always a simulated restart.
    remote_reboot: Literal["restart", "reboot", "off"] = "restart"


class Config(Section):
    device: DeviceConfig = Field(default_factory=DeviceConfig)
    vision: VisionConfig = Field(default_factory=VisionConfig)
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    match: MatchConfig = Field(default_factory=MatchConfig)
    liveness: LivenessConfig = Field(default_factory=LivenessConfig)
    challenge: ChallengeConfig = Field(default_factory=ChallengeConfig)
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

    @model_validator(mode="after")
    def _challenge_fits_the_intent_window(self) -> Config:
        # the code plays while the blink prompt is up: it must end before the window does
        if self.hardware.pins.challenge_light is not None and (
            self.challenge.duration_s >= self.session.intent_timeout_s
        ):
            raise ValueError(
                f"challenge.code_bits x challenge.bit_ms = {self.challenge.duration_s:g} s must "
                f"be shorter than session.intent_timeout_s = {self.session.intent_timeout_s:g}"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _match_follows_the_embedder(cls, data: Any) -> Any:
        # thresholds are per embedder (cosines of two embedders are not comparable): the
        # [match] section starts from the selected embedder's calibrated values
        if not isinstance(data, Mapping):
            return data
        vision = data.get("vision")
        default = VisionConfig.model_fields["embedder"].default
        if isinstance(vision, Mapping):
            embedder = vision.get("embedder", default)
        else:
            embedder = getattr(vision, "embedder", default)
        calibrated = CALIBRATED.get(embedder) if isinstance(embedder, str) else None
        match = data.get("match")
        if calibrated is None or not (match is None or isinstance(match, Mapping)):
            return data
        return {**data, "match": {**calibrated, **(match or {})}}

    @model_validator(mode="before")
    @classmethod
    def _core_values_are_strict(cls, data: Any) -> Any:
        # pydantic would coerce `fare = true` to 1 and "300" to 300 before the core's own
        # checks run: money and timings must be real numbers in the file.
        if not isinstance(data, Mapping):
            return data
        problems = []
        for name, section in _CORE_SECTIONS.items():
            values = data.get(name)
            if isinstance(values, Mapping):
                problems += [f"{name}.{p}" for p in section.type_problems(dict(values))]
        if problems:
            raise ValueError("; ".join(problems))
        return data


def replay_defence(config: Config) -> dict[str, Any]:
    """What this terminal can stop, for the self-test and telemetry: with a challenge light,
    a full-screen replay of a blinking customer fails the code; without one it passes the
    camera-only cues (docs/liveness.md), so the face alone pays only if the operator chose
    `session.pinless_without_ring`."""
    ring = config.hardware.pins.challenge_light is not None
    pinless = ring or config.session.pinless_without_ring
    if ring:
        detail = "challenge light fitted: replays must follow a fresh light code"
    elif pinless:
        detail = (
            "NO challenge light and PIN-less face payment chosen "
            "(session.pinless_without_ring = true): a full-screen replay of a blinking "
            "customer is not stopped"
        )
    else:
        detail = (
            "no challenge light: a full-screen replay of a blinking customer is not "
            "stopped, so every face payment asks for the PIN"
        )
    return {"challenge_light": ring, "pinless_face_payment": pinless, "detail": detail}


_CORE_SECTIONS: dict[str, type[Settings]] = {
    "match": MatchConfig,
    "liveness": LivenessConfig,
    "challenge": ChallengeConfig,
    "session": SessionConfig,
    "payment": PaymentConfig,
}


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
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{key}: {message}" if key else message  # a rule across sections
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


def merge_sections(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, table by table (the config file, then overlays and overrides)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge_sections(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_from_mapping(data: Mapping[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()], source) from None


def overlay_path(data_dir: Path) -> Path:
    return Path(data_dir) / OVERLAY_FILE


def read_overlay(data_dir: Path) -> dict[str, Any]:
    """The remote overlay's partial config ({} when none was ever applied)."""
    path = overlay_path(data_dir)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        problem = f"unreadable remote overlay ({exc}); delete it to drop it"
        raise ConfigError([problem], str(path)) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(["remote overlay without a config object"], str(path))
    return config


def write_overlay(data_dir: Path, partial: Mapping[str, Any], version: int) -> dict[str, Any]:
    """Merge `partial` into the overlay and replace the file atomically (fsynced, 0600)."""
    merged = merge_sections(read_overlay(data_dir), partial)
    document = {"version": version, "config": merged}
    write_private_file(overlay_path(data_dir), json.dumps(document, indent=1).encode(), True)
    return merged


def keep_embedder(data_dir: Path, name: str) -> dict[str, float | int]:
    """Persist `vision.embedder` after the terminal changed embedder because its shard was
    switched (device/shell/migration.py), with that embedder's calibrated [match] row
    (thresholds are per embedder; the overlay wins over the file's [match], so a restart
    matches with the same values). Merged into the remote overlay, whose version (the
    host's config/set numbering) stays as it is. Returns the [match] row."""
    try:
        document = json.loads(overlay_path(data_dir).read_text(encoding="utf-8"))
        version = int(document.get("version", 0)) if isinstance(document, dict) else 0
    except FileNotFoundError:
        version = 0
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError([f"unreadable remote overlay ({exc})"], str(data_dir)) from None
    row = dict(CALIBRATED.get(name, {}))
    partial: dict[str, Any] = {"vision": {"embedder": name}}
    if row:
        partial["match"] = row
    write_overlay(data_dir, partial, version)
    return row


def env_overrides(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    return _env_overrides(os.environ if env is None else env)


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    overlay: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Config:
    """Read the TOML file (absent file = all defaults), the remote overlay of its data
    directory and `extra` (a remote change being validated), apply env overrides, validate."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"file not found: {path}"], source) from None
        except IsADirectoryError:
            raise ConfigError(["is a directory; give the TOML file in it"], source) from None
        except PermissionError:
            raise ConfigError([unreadable_hint(Path(path))], source) from None
        except OSError as exc:
            raise ConfigError([f"cannot read: {exc.strerror}"], source) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"not valid TOML: {exc}"], source) from None
    overrides = _env_overrides(env)
    if overlay:
        data_dir = (
            merge_sections(data, overrides).get("device", {}).get("data_dir", DEFAULT_DATA_DIR)
        )
        data = merge_sections(data, read_overlay(Path(data_dir)))
    return config_from_mapping(merge_sections(merge_sections(data, extra or {}), overrides), source)


def unreadable_hint(path: Path) -> str:
    """What to do about a file this user may not read (the terminal's files are the service
    user's: /etc/blinkpay is root:blinkpay 0750, /var/lib/blinkpay blinkpay 0700)."""
    return (
        f"permission denied for this user; run as the service user "
        f"(sudo -u blinkpay blinkpay ...) or as root, or check `ls -l {path}`"
    )


def _default_config_path() -> Path | None:
    """The installed config when it exists; one clear line when it may not even be looked at."""
    try:
        return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
    except PermissionError:
        raise BlinkpayError(
            f"{DEFAULT_CONFIG_PATH}: {unreadable_hint(DEFAULT_CONFIG_PATH.parent)}; "
            "or pass --config FILE"
        ) from None


def load_terminal_config(path: Path | None) -> Config:
    """The config a command runs with: `path`, else the installed default when it exists, else
    built-in defaults; a problem is a BlinkpayError with one line a field engineer can act on."""
    if path is None:
        path = _default_config_path()
    try:
        return load_config(path)
    except ConfigError as exc:
        raise BlinkpayError(str(exc)) from None
