"""The running terminal: the threads around the main loop, and a clean stop.

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
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from device.app.network import start_net, telemetry_observer
from device.app.parts import Parts, open_parts
from device.clock import Clock, SystemClock
from device.config import Config
from device.hw.camera import CameraRunner, camera_source_from_config
from device.notify import Notifier
from device.remote.loop_hooks import TerminalLoop
from device.shell.loop import MainLoop
from device.shell.terminal import Post, Terminal
from device.signals import STOP_SIGNALS, stop_handler

if TYPE_CHECKING:
    from device.net.telemetry import AppMetrics

log = logging.getLogger("blinkpay.app")

VISION_WAIT_S = 0.2  # how long the vision thread waits for a frame before checking for stop


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
