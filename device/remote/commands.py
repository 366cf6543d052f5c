"""The terminal's remote commands: selftest, gate-test and reboot (resync is the network
side's own). Each returns a CommandOutcome; device.net publishes it on cmd/{name}/result."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from typing import Any

from device.config import Config
from device.hw.camera.runner import CameraHealth
from device.hw.devices import Hardware
from device.hw.gate import MIN_PULSE_MS
from device.net.remote_control import CommandOutcome
from device.net.service import NetService
from device.remote.loop_hooks import TerminalLoop
from device.selftest.check import Check
from device.selftest.live import running_checks
from device.store.shard_writes import audit
from device.store.terminal_store import Store

log = logging.getLogger(__name__)

MAX_TEST_PULSE_MS = 2000  # a gate-test never holds the gate open longer than this
REBOOT_COMMAND = ("systemctl", "reboot")


class TerminalCommands:
    def __init__(
        self,
        config: Config,
        *,
        sim: bool,
        hardware: Hardware,
        store: Store,
        net: NetService,
        loop: TerminalLoop,
        camera: Callable[[], CameraHealth | None],
    ) -> None:
        self.config, self.sim = config, sim
        self.hardware, self.store, self.net, self.loop = hardware, store, net, loop
        self.camera = camera

    def register(self) -> None:
        self.net.register_command("selftest", self.selftest)
        self.net.register_command("gate-test", self.gate_test)
        self.net.register_command("reboot", self.reboot)

    # -- selftest -----------------------------------------------------------------------

    def selftest(self, args: dict[str, Any]) -> CommandOutcome:
        idle = self.loop.call(lambda now: self.loop.idle())
        link = self.net.link
        rtt = f", round trip {link.broker_rtt_ms:.0f} ms" if link.broker_rtt_ms else ""
        broker = Check(
            "mqtt.broker",
            link.connected,
            f"{link.host}:{link.port}: {'connected' if link.connected else 'not connected'} "
            f"(MQTT {link.protocol}){rtt}",
        )
        checks = running_checks(
            self.config,
            hardware=self.hardware,
            camera=self.camera(),
            store=self.store,
            broker=broker,
            idle=idle,
        )
        failed = [c.name for c in checks if not c.ok]
        detail = f"{len(checks)} checks, " + (
            "all ok" if not failed else f"{len(failed)} failed: {' '.join(failed)}"
        )
        result = {"ok": not failed, "checks": [c.to_dict() for c in checks]}
        return CommandOutcome(not failed, detail, result)

    # -- gate-test ----------------------------------------------------------------------

    def gate_test(self, args: dict[str, Any]) -> CommandOutcome:
        pulse_ms = args.get("pulse_ms", self.hardware.relay.pulse_ms)
        if isinstance(pulse_ms, bool) or not isinstance(pulse_ms, int):
            return CommandOutcome(False, f"pulse_ms must be a whole number, got {pulse_ms!r:.20}")
        if not MIN_PULSE_MS <= pulse_ms <= MAX_TEST_PULSE_MS:
            return CommandOutcome(
                False, f"pulse_ms must be {MIN_PULSE_MS} to {MAX_TEST_PULSE_MS}, got {pulse_ms}"
            )
        refusal = self.loop.call(lambda now: self._pulse_if_idle(pulse_ms))
        self.net.publish_event(
            "gate_test", outcome="refused" if refusal else "pulsed", reasons=["remote"]
        )
        if refusal:
            return CommandOutcome(False, refusal)
        return CommandOutcome(True, f"relay pulsed {pulse_ms} ms", {"pulse_ms": pulse_ms})

    def _pulse_if_idle(self, pulse_ms: int) -> str | None:
        """Main thread: between two session events, so no payment can start meanwhile."""
        if not self.loop.idle():
            state = self.loop.terminal.session.state
            return f"refused: a session is in progress (state {state}); try again when idle"
        if self.hardware.relay.energised:
            return "refused: the relay is energised"
        try:  # the local audit record first, as for every gate opening
            with self.store.database.transaction() as db:
                audit(db, "gate_test", {"pulse_ms": pulse_ms, "by": "remote command"})
        except Exception as exc:
            log.error("gate test not recorded: %s", exc, extra={"event": "gate_test_refused"})
            return f"refused: the test could not be recorded ({type(exc).__name__})"
        self.hardware.relay.pulse(pulse_ms)
        log.warning(
            "gate test: relay pulsed %d ms by a remote command (not a payment)",
            pulse_ms,
            extra={"event": "gate_test", "pulse_ms": pulse_ms},
        )
        return None

    # -- reboot -------------------------------------------------------------------------

    def reboot(self, args: dict[str, Any]) -> CommandOutcome:
        how = self.config.device.remote_reboot
        if how == "off":
            return CommandOutcome(False, 'remote reboot is off (device.remote_reboot = "off")')
        if self.sim or how == "restart":
            note = "simulated: " if self.sim else ""
            return CommandOutcome(
                True,
                f"{note}the service restarts when the session is idle",
                {"action": "restart"},
                after=lambda: self.loop.restart_when_idle("remote reboot command"),
            )
        return CommandOutcome(
            True,
            "the system reboots when the session is idle",
            {"action": "reboot"},
            after=lambda: self.loop.restart_when_idle("remote reboot", also=_reboot_system),
        )


def _reboot_system() -> None:
    """Ask systemd for a reboot; when refused (no polkit rule for the service user), the
    service restart that goes with it still happens."""
    log.warning("rebooting the system on a remote command", extra={"event": "reboot"})
    try:
        done = subprocess.run(
            REBOOT_COMMAND, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("%s failed: %s", " ".join(REBOOT_COMMAND), exc)
        return
    if done.returncode != 0:
        log.error("%s failed: %s", " ".join(REBOOT_COMMAND), done.stderr.strip()[:200])
