"""The self-test suite: each subsystem contributes a check provider, a function
(config, how) -> [Check]. Add a provider to CHECK_PROVIDERS to add checks; a provider that
raises becomes one failed check, so one broken subsystem never hides the others'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from device.clock import Clock
from device.config import Config, replay_defence
from device.errors import BlinkpayError, os_error_line
from device.hw.platform import DEVICE_TREE_MODEL, raspberry_pi_model
from device.selftest.check import Check


@dataclass(frozen=True)
class How:
    """How the suite runs: simulated hardware or not, the clock, where the board says what
    it is (tests point this at a file that says "Raspberry Pi ..." to act as a Pi)."""

    sim: bool
    clock: Clock
    board_model_file: Path = DEVICE_TREE_MODEL


CheckProvider = Callable[[Config, How], list[Check]]


def hardware_provider(config: Config, how: How) -> list[Check]:
    from device.selftest.hardware import hardware_checks  # only what is run is loaded

    challenge_fps = None
    if config.hardware.pins.challenge_light is not None:
        challenge_fps = config.challenge.required_fps
    checks = hardware_checks(config.hardware, how.sim, how.clock, challenge_fps=challenge_fps)
    defence = replay_defence(config)
    checks.append(Check("liveness.replay", True, defence["detail"]))
    backend = "sim" if how.sim else config.hardware.backend
    board = raspberry_pi_model(how.board_model_file)
    if board is not None and backend == "sim":
        # Simulated pins always read back right: on a Pi that would hide unwired hardware.
        fix = (
            "run it without --sim"
            if how.sim
            else 'set [hardware] backend = "rpi" and [hardware.camera] source = "picamera2" '
            "in the config (`blinkpay config show` prints the file in use)"
        )
        detail = f"this is a {board} but the hardware checked is simulated: {fix}"
        checks.insert(0, Check("hw.backend", False, detail))
    return checks


def models_provider(config: Config, how: How) -> list[Check]:
    return model_checks(config)


def model_checks(config: Config) -> list[Check]:
    """Every shipped model is present and matches the manifest's sha256."""
    from device.vision.models import ModelError, load_manifest, verify_file

    try:
        manifest = load_manifest(config.vision.models_dir)
    except ModelError as exc:
        return [Check("models.manifest", False, str(exc))]
    checks = []
    for role, entry in sorted(manifest.entries.items()):
        try:
            verify_file(entry)
            checks.append(Check(f"models.{role}", True, f"{entry.path.name}: sha256 ok"))
        except ModelError as exc:
            checks.append(Check(f"models.{role}", False, str(exc)))
    return checks


def store_provider(config: Config, how: How) -> list[Check]:
    """The database opens with the device key, every record decrypts, the index agrees."""
    from device.selftest.storage import verify_store
    from device.store.terminal_store import db_path, open_existing_store, store_key_paths

    paths = store_key_paths(config.store, config.device.data_dir)
    if not paths.data_key.exists():
        detail = f"no data key at {paths.data_key}: run `blinkpay provision` first"
        return [Check("store.keys", False, detail)]
    signing = signing_key_check(paths.signing_key)
    if not signing.ok:
        return [signing]
    database = db_path(config.store, config.device.data_dir)
    if not database.exists():  # provisioned, the service has not started yet
        detail = f"no database yet at {database}: the service creates it at first start"
        return [Check("store.database", True, detail)]
    store = open_existing_store(config.store, config.device.data_dir)
    try:
        return verify_store(store)
    finally:
        store.close()


def signing_key_check(path: Path) -> Check:
    """The key the terminal signs its transactions with: present, private, Ed25519."""
    from device.crypto.signing import load_signing_key

    try:
        load_signing_key(path)
    except BlinkpayError as exc:
        return Check("store.signing_key", False, str(exc))
    except OSError as exc:
        return Check("store.signing_key", False, os_error_line(exc))
    return Check("store.signing_key", True, f"{path}: Ed25519, mode 0600, owned by this user")


def broker_provider(config: Config, how: How) -> list[Check]:
    """An MQTT session to the configured broker (TLS and client certificate as configured)."""
    from device.net.client import MqttLink

    if not config.mqtt.enabled:
        return [Check("mqtt.broker", True, "MQTT disabled in the config (offline terminal)")]
    link = MqttLink(config.mqtt, f"{config.device.id}-selftest")
    link.start()
    try:
        connected = link.wait_connected(BROKER_TIMEOUT_S)
    finally:
        link.stop()
    if connected:
        return [Check("mqtt.broker", True, f"{config.mqtt.url}: connected ({link.protocol})")]
    from device.net.probe import diagnose

    why = diagnose(config.mqtt)
    return [
        Check("mqtt.broker", False, f"{config.mqtt.url}: no session in {BROKER_TIMEOUT_S} s: {why}")
    ]


def vending_provider(config: Config, how: How) -> list[Check]:
    """Vending mode: the MDB transport, its port, and the vending machine heard on it."""
    from device.selftest.vending import vending_checks

    return vending_checks(config, how.sim, how.clock)


BROKER_TIMEOUT_S = 5.0

# (name, provider), run in this order.
CHECK_PROVIDERS: list[tuple[str, CheckProvider]] = [
    ("hardware", hardware_provider),
    ("models", models_provider),
    ("store", store_provider),
    ("broker", broker_provider),
    ("vending", vending_provider),
]


def collect_checks(config: Config, how: How) -> list[Check]:
    checks: list[Check] = []
    for name, provider in CHECK_PROVIDERS:
        try:
            checks.extend(provider(config, how))
        except Exception as exc:  # reported as a failed check, never a traceback
            checks.append(Check(name, False, f"check failed to run: {type(exc).__name__}: {exc}"))
    return checks
