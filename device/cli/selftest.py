"""blinkpay selftest: run every subsystem's checks and report them (text or --json).

Each subsystem contributes a check provider: a function (config, args, clock) -> [Check].
Add a provider to CHECK_PROVIDERS to add checks; a provider that raises becomes one failed
check, so one broken subsystem never hides the others' results.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from device.cli._common import add_config_argument, config_from_args, print_json
from device.clock import Clock, SystemClock
from device.config import Config
from device.errors import BlinkpayError, os_error_line
from device.hw.platform import DEVICE_TREE_MODEL, raspberry_pi_model
from device.selftest import Check

HELP = "check camera, GPIO, models, database, broker"

CheckProvider = Callable[[Config, argparse.Namespace, Clock], list[Check]]


def hardware_provider(config: Config, args: argparse.Namespace, clock: Clock) -> list[Check]:
    from device.hw.checks import hardware_checks  # imported here: only what is run is loaded

    checks = hardware_checks(config.hardware, args.sim, clock)
    backend = "sim" if args.sim else config.hardware.backend
    board = raspberry_pi_model(args.board_model_file)
    if board is not None and backend == "sim":
        # Simulated pins always read back right: on a Pi that would hide unwired hardware.
        fix = (
            "run it without --sim"
            if args.sim
            else 'set [hardware] backend = "rpi" and [hardware.camera] source = "picamera2" '
            "in the config (`blinkpay config show` prints the file in use)"
        )
        detail = f"this is a {board} but the hardware checked is simulated: {fix}"
        checks.insert(0, Check("hw.backend", False, detail))
    return checks


def models_provider(config: Config, args: argparse.Namespace, clock: Clock) -> list[Check]:
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


def store_provider(config: Config, args: argparse.Namespace, clock: Clock) -> list[Check]:
    """The database opens with the device key, every record decrypts, the index agrees."""
    from device.store.terminal_store import db_path, open_existing_store, store_key_paths
    from device.store.verify import verify_store

    paths = store_key_paths(config)
    if not paths.data_key.exists():
        detail = f"no data key at {paths.data_key}: run `blinkpay provision` first"
        return [Check("store.keys", False, detail)]
    signing = signing_key_check(paths.signing_key)
    if not signing.ok:
        return [signing]
    if not db_path(config).exists():  # provisioned, the service has not started yet
        detail = f"no database yet at {db_path(config)}: the service creates it at first start"
        return [Check("store.database", True, detail)]
    store = open_existing_store(config)
    try:
        return verify_store(store)
    finally:
        store.close()


def signing_key_check(path: Path) -> Check:
    """The key the terminal signs its transactions with: present, private, Ed25519."""
    from device.store.keys import load_signing_key

    try:
        load_signing_key(path)
    except BlinkpayError as exc:
        return Check("store.signing_key", False, str(exc))
    except OSError as exc:
        return Check("store.signing_key", False, os_error_line(exc))
    return Check("store.signing_key", True, f"{path}: Ed25519, mode 0600, owned by this user")


def broker_provider(config: Config, args: argparse.Namespace, clock: Clock) -> list[Check]:
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


BROKER_TIMEOUT_S = 5.0

# (name, provider), run in this order.
CHECK_PROVIDERS: list[tuple[str, CheckProvider]] = [
    ("hardware", hardware_provider),
    ("models", models_provider),
    ("store", store_provider),
    ("broker", broker_provider),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--sim", action="store_true", help="check simulated hardware")
    parser.add_argument("--json", action="store_true", help="print {ok, checks: [...]} as JSON")
    # Tests point this at a file that says "Raspberry Pi ..." to act as a Pi.
    parser.add_argument(
        "--board-model-file", type=Path, default=DEVICE_TREE_MODEL, help=argparse.SUPPRESS
    )


def collect_checks(config: Config, args: argparse.Namespace, clock: Clock) -> list[Check]:
    checks: list[Check] = []
    for name, provider in CHECK_PROVIDERS:
        try:
            checks.extend(provider(config, args, clock))
        except Exception as exc:  # reported as a failed check, never a traceback
            checks.append(Check(name, False, f"check failed to run: {type(exc).__name__}: {exc}"))
    return checks


def summary(checks: list[Check]) -> str:
    """The last line: how many checks ran, how many failed and which."""
    failed = [check.name for check in checks if not check.ok]
    if not failed:
        return f"selftest: all ok ({len(checks)} checks)"
    return f"selftest: FAILED: {len(failed)} of {len(checks)} checks failed ({', '.join(failed)})"


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    checks = collect_checks(config, args, SystemClock())
    ok = all(check.ok for check in checks)
    if args.json:
        failed = sum(not check.ok for check in checks)
        print_json({"ok": ok, "failed": failed, "checks": [check.to_dict() for check in checks]})
    else:
        width = max((len(check.name) for check in checks), default=0)
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
        print(f"\n{summary(checks)}")
    return 0 if ok else 1
