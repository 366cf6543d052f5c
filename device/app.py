"""Wiring: adapters from the config, the threads around the main loop, and a clean stop.

Threads: camera capture (newest frame wins) -> vision worker (pipeline) -> main loop;
keypad scan -> main loop; MQTT network + worker (device.net); output patterns. The main
loop owns the session (device/shell/loop.py) and is the only place that tells systemd
it is alive: READY=1 once it runs, WATCHDOG=1 while it keeps running.

SIGTERM/SIGINT stop the loop; then the relay is released first, the camera and vision
stop, the network publishes "offline" and the database closes. Every ledger write was
already durable when it returned, so nothing is flushed late.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device import __version__
from device.clock import Clock, SystemClock
from device.config import Config, replay_defence
from device.crypto.signing import load_signing_key
from device.crypto.template_box import load_box_key
from device.hw.camera import CameraRunner, camera_source_from_config
from device.hw.devices import Hardware, open_hardware
from device.notify import Notifier
from device.provisioning import read_pin_key
from device.remote.loop_hooks import TerminalLoop
from device.shell.effects import HostPort, Observer
from device.shell.host import NetHost
from device.shell.loop import MainLoop
from device.shell.terminal import Post, Terminal
from device.signals import STOP_SIGNALS, stop_handler
from device.store.ledger_chain import LedgerIntegrityError
from device.store.terminal_store import Store, check_at_start, open_store
from device.vending.factory import open_controller
from device.vending.port import VendingController
from device.vision.pipeline import FacePipeline

if TYPE_CHECKING:
    from device.net.service import NetService
    from device.net.telemetry import AppMetrics

log = logging.getLogger("blinkpay.app")

PRUNE_EVERY_S = 3600.0  # at start, then hourly: acked ledger rows past the retention go
VISION_WAIT_S = 0.2  # how long the vision thread waits for a frame before checking for stop
FAULT_REPORT_S = 5.0  # how long a terminal that will not start tries to tell the broker


def pin_key_path(config: Config) -> Path:
    return Path(config.device.data_dir) / config.store.pin_key_file


def load_pin_key(config: Config) -> bytes:
    """The AES PIN key shared with the host (hex in a 0600 file, made by provision)."""
    return read_pin_key(pin_key_path(config))


@dataclass
class Parts:
    """The adapters of one terminal; close() puts the hardware in its safe state first."""

    config: Config
    clock: Clock
    hardware: Hardware
    store: Store
    pipeline: FacePipeline
    signing_key: Ed25519PrivateKey
    pin_key: bytes
    net: NetService | None = None  # once started
    vending: VendingController | None = None  # vending mode: the machine's link (not started)

    relay_energised_at_stop: bool | None = None  # read back from the pin after release

    def terminal(
        self,
        post: Post,
        host: HostPort | None,
        observer: Observer | None = None,
        *,
        config: Config | None = None,
        vending: VendingController | Literal["parts"] | None = "parts",
    ) -> Terminal:
        """The terminal's decisions over these parts (the caller starts the vending
        controller, the keypad and the camera once it exists). `config` and `vending`
        replace the parts' own (the demo runs one terminal per mode over one set of parts)."""
        return Terminal(
            config or self.config,
            pipeline=self.pipeline,
            store=self.store,
            hardware=self.hardware,
            clock=self.clock,
            signing_key=self.signing_key,
            pin_key=self.pin_key,
            post=post,
            host=host,
            observer=observer,
            vending=self.vending if vending == "parts" else vending,
        )

    def close(self) -> None:
        try:
            self.hardware.relay.release()  # the safe state before anything else can fail
            self.relay_energised_at_stop = self.hardware.relay.read_back()
            self.hardware.close()
        finally:
            if self.vending is not None:
                try:
                    self.vending.close()
                except Exception:
                    log.exception("vending controller close failed")
            if self.net is not None:
                try:
                    self.net.stop()
                except Exception:
                    log.exception("network stop failed")
            self.store.close()


def open_parts(config: Config, *, sim: bool, clock: Clock) -> Parts:
    """Models, store (keys from provisioning), hardware; no threads started yet."""
    pipeline = FacePipeline.from_config(config.vision)
    embedder = pipeline.embedder
    assert embedder is not None
    signing_key = load_signing_key(Path(config.device.data_dir) / config.store.signing_key_file)
    pin_key = load_pin_key(config)
    try:
        store = open_store(
            config.store,
            config.device.data_dir,
            embedder.version,
            embedder.dim,
            config.mqtt.shard_id,
        )
    except LedgerIntegrityError as exc:
        report_fault(config, "ledger", str(exc))
        raise
    try:
        check_at_start(store)
    except LedgerIntegrityError as exc:
        store.close()
        report_fault(config, "ledger", str(exc))
        raise
    try:
        hardware = open_hardware(config.hardware, clock, sim or config.hardware.backend == "sim")
    except BaseException:
        store.close()
        raise
    parts = Parts(config, clock, hardware, store, pipeline, signing_key, pin_key)
    if config.device.mode == "vending":
        parts.vending = open_controller(config.vending, clock)
    return parts


def report_fault(config: Config, reason: str, detail: str) -> None:
    """Tell the fleet (retained status `fault`) and the log why the terminal will not start."""
    log.critical(detail, extra={"event": "fault", "reason": reason})
    if not config.mqtt.enabled:
        return
    from device.net.client import MqttLink
    from device.net.topics import DeviceTopics

    link = MqttLink(config.mqtt, f"{config.device.id}-fault")
    link.start()
    try:
        topic = DeviceTopics(config.mqtt.prefix, config.device.id).status
        if not (link.wait_connected(FAULT_REPORT_S) and link.publish_fault(topic, reason, detail)):
            log.error("could not publish the fault status to %s", config.mqtt.url)
    finally:
        link.stop()


def start_net(parts: Parts, post: Post, *, hold_remote: bool = False) -> NetHost | None:
    """The MQTT side when enabled; None runs the terminal on the offline rules.
    hold_remote: remote requests wait until attach_remote has put the handlers in place."""
    config = parts.config
    if not config.mqtt.enabled:
        log.warning("MQTT disabled: offline rules only", extra={"event": "mqtt_disabled"})
        return None
    net = start_net_service(
        config, parts.store, software=f"blinkpay {__version__}", hold_remote=hold_remote
    )
    net.metrics.set_liveness(replay_defence(config))  # telemetry says what it cannot stop
    parts.net = net
    return NetHost(net, post, parts.clock)


def start_net_service(
    config: Config, store: Store, *, software: str = "", hold_remote: bool = False
) -> NetService:
    """A started NetService over `store` (the one way the terminal's network side starts)."""
    from device.net.service import NetService  # paho only when MQTT is on
    from device.net.shard_sync import TemplateShardPort

    software = software or f"blinkpay {__version__}"
    net = NetService(
        config.mqtt,
        config.device.id,
        ledger=store.ledger,
        shard_store=TemplateShardPort(store.shard),
        software=software,
        versions={"software": software, "models": model_versions(config)},
        state_dir=Path(config.device.data_dir),
        signing_key=load_signing_key(Path(config.device.data_dir) / config.store.signing_key_file),
        template_key=load_template_key(config),
        hold_remote=hold_remote,
    )
    retention = config.store.ledger_retention_days
    net.worker.every(PRUNE_EVERY_S, lambda: prune_ledger(store, retention))
    net.start()
    return net


def model_versions(config: Config) -> dict[str, str]:
    """Role -> version of the models the manifest names, and `embedder`: the version of the
    embedder this terminal matches with (for telemetry); {} without a manifest."""
    from device.paths import default_models_dir
    from device.vision.embedder import EMBEDDER_ROLES
    from device.vision.models import ModelError, load_manifest

    try:
        manifest = load_manifest(config.vision.models_dir or default_models_dir())
    except ModelError:
        return {}
    versions = {role: entry.version for role, entry in manifest.entries.items()}
    selected = manifest.entries.get(EMBEDDER_ROLES.get(config.vision.embedder, ""))
    if selected is not None:
        versions["embedder"] = str(selected.raw.get("embedder_version", selected.version))
    return versions


def load_template_key(config: Config) -> X25519PrivateKey | None:
    """The X25519 key that opens the shard's sealed templates. Without it the terminal
    still runs (payments, ledger sync) but refuses every template, and says so."""
    path = Path(config.device.data_dir) / config.store.box_key_file
    if not path.exists():
        log.error(
            "no X25519 key at %s: shard templates cannot be opened; run `blinkpay provision` "
            "and register the key at the host",
            path,
            extra={"event": "no_template_key"},
        )
        return None
    return load_box_key(path)


def prune_ledger(store: Store, retention_days: int, now: float | None = None) -> int:
    """Forget acknowledged transactions older than the operator's retention (the host holds
    them); unacknowledged ones are never pruned. Runs on the network worker."""
    now = time.time() if now is None else now
    before = datetime.fromtimestamp(now - retention_days * 86400, UTC).strftime("%Y-%m-%d")
    removed = store.ledger.prune_acked(before)
    if removed:
        log.info(
            "pruned %d acknowledged transactions before %s",
            removed,
            before,
            extra={"event": "ledger_pruned", "count": removed, "before_day": before},
        )
    return removed


class VisionWorker:
    """Takes the newest camera frame, runs the pipeline, posts the faces to the loop."""

    def __init__(
        self, runner: CameraRunner, terminal: Terminal, post: Post, metrics: AppMetrics | None
    ) -> None:
        self.runner, self.terminal, self.post, self.metrics = runner, terminal, post, metrics
        self._stop = threading.Event()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="vision", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self.runner.get(VISION_WAIT_S)
            if frame is None:
                continue
            try:
                self.post(self.terminal.process_frame(frame))
                if self.metrics is not None:
                    self.metrics.frame()
                    for stage, ms in asdict(self.terminal.pipeline.last_times).items():
                        self.metrics.stage(stage, ms)
            except Exception:
                # A bad frame is logged and counted; the next one comes in a moment.
                self.errors += 1
                log.exception("vision failed on a frame", extra={"event": "vision_error"})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def run(
    config: Config,
    *,
    sim: bool = False,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    parts: Parts | None = None,
    config_path: Path | None = None,
) -> int:
    """Run the terminal until SIGTERM/SIGINT; 0 on a clean stop, RESTART_EXIT_CODE when a
    remote request restarts it. `parts` (from open_parts) lets a test hold the adapters;
    they are closed here either way. `config_path`: the file remote config/set builds on."""
    clock = clock or SystemClock()
    notifier = notifier or Notifier()
    loop = MainLoop(clock, notifier)
    parts = parts or open_parts(config, sim=sim, clock=clock)
    runner: CameraRunner | None = None
    vision: VisionWorker | None = None
    hooks: TerminalLoop | None = None
    previous = {
        signum: signal.signal(signum, stop_handler(loop.request_stop)) for signum in STOP_SIGNALS
    }
    try:
        interrupted = parts.store.ledger.recover_interrupted()
        if interrupted:
            log.warning(
                "declined %d payments a previous run left pending",
                len(interrupted),
                extra={"event": "ledger_recovered", "count": len(interrupted)},
            )
        host = start_net(parts, loop.post, hold_remote=True)
        terminal = parts.terminal(
            loop.post,
            host,
            None if parts.net is None else telemetry_observer(parts.net.metrics),
        )
        if parts.vending is not None:
            parts.vending.start()  # the machine's events now have a terminal to go to
            log.info(
                "vending controller started",
                extra={"event": "vending_started", "controller": parts.vending.name},
            )
        parts.hardware.scheduler.start()
        parts.hardware.keypad.start(loop.post)
        simulated = sim or config.hardware.backend == "sim"
        source = camera_source_from_config(config.hardware.camera, clock, simulated)
        runner = CameraRunner(source, clock, config.hardware.camera.stall_after_s)
        runner.start()
        vision = VisionWorker(
            runner, terminal, loop.post, None if parts.net is None else parts.net.metrics
        )
        vision.start()
        hooks = TerminalLoop(loop, terminal)
        if parts.net is not None:
            attach_remote(parts, hooks, sim=simulated, config_path=config_path, runner=runner)
        ready = _ReadyOnFirstTick(notifier, hooks.tick, config)
        log.info(
            "terminal running",
            extra={"event": "started", "device_id": config.device.id, "sim": sim},
        )
        loop.run(hooks.handle, ready)
        log.info("stopping: %s", loop.stop_reason, extra={"event": "stopping"})
        notifier.stopping(f"stopping: {loop.stop_reason}")
    finally:
        parts.hardware.relay.release()  # the gate's safe state before anything else
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if vision is not None:
            vision.stop()
        if runner is not None:
            runner.close()
        parts.close()
        notifier.close()
    exit_code = 0 if hooks is None else hooks.exit_code
    log.info(
        "stopped",
        extra={
            "event": "stopped",
            "relay_energised": parts.relay_energised_at_stop,
            "exit_code": exit_code,
        },
    )
    return exit_code


def attach_remote(
    parts: Parts,
    hooks: TerminalLoop,
    *,
    sim: bool,
    config_path: Path | None,
    runner: CameraRunner,
) -> None:
    """The remote commands and config/set of the running terminal (device.remote)."""
    from device.remote.commands import TerminalCommands  # paho only when MQTT is on
    from device.remote.config_set import RemoteConfig

    assert parts.net is not None
    TerminalCommands(
        parts.config,
        sim=sim,
        hardware=parts.hardware,
        store=parts.store,
        net=parts.net,
        loop=hooks,
        camera=runner.health,
    ).register()
    parts.net.on_config(RemoteConfig(config_path, parts.config, hooks))
    parts.net.remote.release()


def telemetry_observer(metrics: AppMetrics) -> Observer:
    """Counts the session's decisions for the telemetry topic (no ids, no biometrics)."""

    def observe(what: str, details: dict[str, Any]) -> None:
        if what == "ledger" and details.get("status") in ("approved", "declined"):
            metrics.decision(str(details["status"]))
        elif what == "notify" and details.get("kind") == "liveness_rejected":
            metrics.liveness_rejected()
        elif what == "notify" and details.get("kind") in ("unknown_face", "session_aborted"):
            metrics.decision(str(details["kind"]))
        elif what == "service":
            metrics.service_state(str(details["state"]), str(details.get("detail", "")))

    return observe


class _ReadyOnFirstTick:
    """The loop's tick handler that says READY=1 once the loop really runs."""

    def __init__(self, notifier: Notifier, tick: Callable[[float], None], config: Config) -> None:
        self._notifier, self._tick, self._config = notifier, tick, config
        self._ready = False

    def __call__(self, now: float) -> None:
        if not self._ready:
            self._ready = True
            self._notifier.ready(f"running as {self._config.device.id}")
        self._tick(now)
