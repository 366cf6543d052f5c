"""The self-test suite: each subsystem contributes a check provider, a function
(config, sim, clock) -> [Check]. Add a provider to CHECK_PROVIDERS to add checks; a provider
that raises becomes one failed check, so one broken subsystem never hides the others'.
"""

from __future__ import annotations

from collections.abc import Callable

from device.clock import Clock
from device.config import Config
from device.selftest.check import Check

CheckProvider = Callable[[Config, bool, Clock], list[Check]]


def hardware_provider(config: Config, sim: bool, clock: Clock) -> list[Check]:
    from device.selftest.hardware import (
        hardware_checks,  # imported here: only what is run is loaded
    )

    return hardware_checks(config.hardware, sim, clock)


def models_provider(config: Config, sim: bool, clock: Clock) -> list[Check]:
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


def store_provider(config: Config, sim: bool, clock: Clock) -> list[Check]:
    """The database opens with the device key, every record decrypts, the index agrees."""
    from device.selftest.storage import verify_store
    from device.store.terminal_store import db_path, open_existing_store, store_key_paths

    data_key = store_key_paths(config.store, config.device.data_dir).data_key
    if not data_key.exists():
        detail = f"no data key at {data_key}: run `blinkpay provision` first"
        return [Check("store.keys", False, detail)]
    database = db_path(config.store, config.device.data_dir)
    if not database.exists():  # provisioned, the service has not started yet
        detail = f"no database yet at {database}: the service creates it at first start"
        return [Check("store.database", True, detail)]
    store = open_existing_store(config.store, config.device.data_dir)
    try:
        return verify_store(store)
    finally:
        store.close()


def broker_provider(config: Config, sim: bool, clock: Clock) -> list[Check]:
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
    return [Check("mqtt.broker", False, f"{config.mqtt.url}: no session in {BROKER_TIMEOUT_S} s")]


def vending_provider(config: Config, sim: bool, clock: Clock) -> list[Check]:
    """Vending mode: the MDB transport, its port, and the vending machine heard on it."""
    from device.selftest.vending import vending_checks

    return vending_checks(config, sim, clock)


BROKER_TIMEOUT_S = 5.0

# (name, provider), run in this order.
CHECK_PROVIDERS: list[tuple[str, CheckProvider]] = [
    ("hardware", hardware_provider),
    ("models", models_provider),
    ("store", store_provider),
    ("broker", broker_provider),
    ("vending", vending_provider),
]


def collect_checks(config: Config, *, sim: bool, clock: Clock) -> list[Check]:
    checks: list[Check] = []
    for name, provider in CHECK_PROVIDERS:
        try:
            checks.extend(provider(config, sim, clock))
        except Exception as exc:  # reported as a failed check, never a traceback
            checks.append(Check(name, False, f"check failed to run: {type(exc).__name__}: {exc}"))
    return checks
