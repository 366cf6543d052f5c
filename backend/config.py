"""The reference host's settings (a TOML file, every key documented in docs/host.md),
validated like the terminal's. Relative paths in the file are relative to the file's own
directory, so `blinkpay-host keys DIR` and a host.toml in DIR with the defaults just work."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backend.bootfiles import BootConfig
from backend.broker import BrokerSite
from backend.console.settings import ConsoleSettings
from device.errors import BlinkpayError
from device.net.config import MqttConfig
from device.net.schemas import ID_PATTERN
from device.net.topics import SHARE_GROUP

# A host worker's broker session ends with its connection (docs/scaling.md, "Many
# workers"): a worker that dies leaves the shared subscription at once and the others get
# every request. Nothing of the money waits in it: a terminal resends each ledger row until
# the host's signed acknowledgement, and an authorization it no longer waits for is useless.
HOST_SESSION_EXPIRY_S = 0


class HostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host_id: str = Field(default="host-1", pattern=ID_PATTERN)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    db_path: Path = Path("blinkpay-host.db")
    # PostgreSQL for many host workers on many machines (docs/scaling.md); when set it is
    # the store and db_path is not used. libpq's URL form: the password may come from
    # ~/.pgpass or PGPASSWORD instead of the URL.
    db_url: str | None = Field(default=None, pattern=r"^postgres(ql)?://\S+$")
    # The names `blinkpay-host keys DIR` writes.
    signing_key_file: Path = Path("signing.pem")
    pin_key_file: Path = Path("pin.key")
    # The host's X25519 key: terminals seal the templates they compute during an embedder
    # migration to it (made on first use when missing, 0600). None: box.pem beside
    # signing_key_file.
    box_key_file: Path | None = None
    share_group: str = Field(default=SHARE_GROUP, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Messages one worker handles at a time, each on its own thread and database connection,
    # each acknowledged to the broker only once handled (docs/scaling.md). 1: one at a
    # time on the MQTT thread.
    handler_threads: int = Field(default=4, ge=1, le=64)
    snapshot_chunk_bytes: int = Field(default=64 * 1024, ge=256, le=8 * 1024 * 1024)
    # A new shard's embedder (models/manifest.json: the embedder_version of the role the
    # terminals' vision.embedder selects, MobileFaceNet by default); each shard keeps its
    # own after, and changes it by a migration (`blinkpay-host shard migrate`, docs/host.md).
    embedder_version: str = "mobilefacenet-sirius-v1-float16-1"
    dim: int = Field(default=192, ge=1, le=4096)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    # An online approval holds the amount until the terminal's row settles it; a hold whose
    # row has not come by then is released (docs/payment.md, "Settlement").
    hold_expiry_s: float = Field(default=86_400.0, gt=0.0, allow_inf_nan=False)
    hold_check_s: float = Field(default=60.0, gt=0.0, allow_inf_nan=False)
    # Always on: the host refuses every request and row it cannot verify against the key
    # registered for the device (docs/security.md). Kept so older host.toml files load.
    require_device_keys: bool = True
    # Limits at the host (docs/security.md, "Limits"): wrong PINs in a row before a
    # customer's PIN locks (an operator unlocks: `blinkpay-host account unlock TOKEN`), the
    # largest offline approval a row may claim (the terminals' payment.offline_floor_limit),
    # and what one terminal may ask for.
    pin_max_tries: int = Field(default=5, ge=1, le=100)
    offline_floor_limit: int = Field(default=500, ge=0)
    auth_rate_per_s: float = Field(default=2.0, gt=0.0, allow_inf_nan=False)
    auth_burst: int = Field(default=10, ge=1)
    pin_blocks_per_min: float = Field(default=30.0, gt=0.0, allow_inf_nan=False)
    pin_block_burst: int = Field(default=16, ge=8)
    # Authorization threads per worker: each waits on the database most of its time (round
    # trips, the commit's flush), so these bound a worker's authorizations per second.
    auth_workers: int = Field(default=4, ge=1, le=64)
    auth_queue_per_device: int = Field(default=4, ge=1, le=1000)
    # What `device add --boot-dir` writes on a new terminal's card (docs/host.md, [boot]).
    boot: BootConfig = Field(default_factory=BootConfig)
    # The operator console: telemetry retention, alert delivery (docs/console.md).
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    # The site broker's password and ACL files (docs/broker.md, [broker]).
    broker: BrokerSite = Field(default_factory=BrokerSite)

    @model_validator(mode="after")
    def _keys_required(self) -> Self:
        if not self.require_device_keys:
            raise ValueError(
                "require_device_keys = false is no longer supported: every terminal signs "
                "its messages; register its key with `blinkpay-host device add`"
            )
        return self

    @property
    def database(self) -> Path | str:
        """What HostDb opens: the PostgreSQL URL when set, else the SQLite file."""
        return self.db_url or self.db_path

    @property
    def box_key_path(self) -> Path:
        return self.box_key_file or self.signing_key_file.parent / "box.pem"

    @model_validator(mode="after")
    def _short_host_sessions(self) -> Self:
        # A host's broker session holds its place in the shared subscription: while a dead
        # host's session lasts, mosquitto deals it a share of the terminals' requests that
        # nobody answers. None kept, unless set explicitly.
        if "session_expiry_s" not in self.mqtt.model_fields_set:
            self.mqtt = self.mqtt.model_copy(update={"session_expiry_s": HOST_SESSION_EXPIRY_S})
        return self


# Keys holding paths, resolved against the config file's directory when relative.
PATH_KEYS = ("db_path", "signing_key_file", "pin_key_file", "box_key_file")
MQTT_PATH_KEYS = ("ca_file", "cert_file", "key_file", "backend_public_key_file", "password_file")
BOOT_PATH_KEYS = (
    "ca_file",
    "operator_public_key_file",
    "ssh_authorized_keys_file",
    "wifi_psk_file",
)


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's tables, or a BlinkpayError that names the path and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BlinkpayError(f"{path}: no such file (see docs/host.md for its keys)") from None
    except IsADirectoryError:
        raise BlinkpayError(f"{path}: is a directory, not a TOML file") from None
    except PermissionError:
        raise BlinkpayError(
            f"{path}: permission denied; run as a user who can read it (ls -l {path})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BlinkpayError(f"{path}: cannot read ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BlinkpayError(f"{path}: not valid TOML: {exc}") from None


def _anchored(config: HostConfig, base: Path) -> HostConfig:
    """Relative paths (given or default) resolved against the config file's directory."""

    def under_base(model: BaseModel, keys: tuple[str, ...]) -> dict[str, Path]:
        values = {key: getattr(model, key) for key in keys}
        return {k: base / v for k, v in values.items() if v is not None and not v.is_absolute()}

    mqtt = config.mqtt.model_copy(update=under_base(config.mqtt, MQTT_PATH_KEYS))
    boot = config.boot.model_copy(update=under_base(config.boot, BOOT_PATH_KEYS))
    broker = config.broker.model_copy(update=under_base(config.broker, ("dir",)))
    return config.model_copy(
        update={**under_base(config, PATH_KEYS), "mqtt": mqtt, "boot": boot, "broker": broker}
    )


def load_host_config(path: Path | None) -> HostConfig:
    """`path` (relative paths relative to its directory), else built-in defaults (relative
    to the current directory)."""
    data = _read_toml(Path(path)) if path is not None else {}
    try:
        config = HostConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise BlinkpayError(f"{path or 'host config'}: {problems}") from None
    return config if path is None else _anchored(config, Path(path).resolve().parent)
