"""Remote configuration and commands, both signed by the backend.

config/set: a versioned partial config; a version not above the last applied one is a
replay. The app's callback validates, persists and applies it, or returns the reason it
refuses; the outcome goes to config/state (retained).
cmd/{name}: resync, selftest, gate-test, reboot; each request id runs once, only while
fresh (issued_at a finite number within command_max_age_s); the handler's outcome goes to
cmd/{name}/result, and a handler's `after` step (a restart) runs once that is delivered.

A request id that arrives again (the console re-sends a command whose result it never got,
newly signed) never runs again and is counted as a `repeat` (not a `replay`: the fleet's
telemetry should not show the console's own re-sends as an attack): when it ran, the outcome
recorded for it is published again; when it was accepted but its run never finished (the
terminal stopped mid-command), it is answered as failed, saying so; while it is still
running, the result follows when it finishes. An id kept from before outcomes were
recorded is refused without an answer and counted as a `replay`. The last applied config
version and the request ids accepted lately with their outcomes are kept in a small state file
(device/net/remote_state.py; written atomically and fsynced before a command runs and
again before its result is published), so this holds across a restart.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device.net.client import Inbound, MqttLink
from device.net.envelope import open_envelope
from device.net.remote_state import Seen, load_state, prune, save_state
from device.net.schemas import PayloadRejected
from device.net.topics import COMMAND_MEMORY_S, COMMAND_NAMES, DeviceTopics
from device.net.worker import Worker

log = logging.getLogger(__name__)

MAX_HELD = 64  # requests kept while the terminal starts (before its handlers are in place)
RESULT_FLUSH_S = 3.0  # how long an `after` step waits for the result to reach the broker
INTERRUPTED = (
    "this terminal stopped after it accepted the command and before the command finished;"
    " it is not run again: check the terminal and send a new command if it is still needed"
)
BUSY = "this terminal was busy (too many remote requests waiting); the command did not run"


@dataclass(frozen=True)
class CommandOutcome:
    ok: bool
    detail: str
    result: dict[str, Any] = field(default_factory=dict)
    # Runs after the result was published (and the broker confirmed it, or timed out).
    after: Callable[[], None] | None = None


@dataclass(frozen=True)
class ConfigOutcome:
    """A config/set answer: refused with a reason, or applied (live or by a restart)."""

    applied: bool
    reason: str = ""
    after: Callable[[], None] | None = None


CommandHandler = Callable[[dict[str, Any]], CommandOutcome]
# Returns None or a ConfigOutcome(applied=True) when applied, else the reason or a refusal.
ConfigApplier = Callable[[dict[str, Any], int], "str | ConfigOutcome | None"]


def issued_at(body: dict[str, Any]) -> float:
    """The command's timestamp, only when it is a real finite number (not NaN, inf, a string
    or a bool: each of those would slip through an age comparison)."""
    value = body.get("issued_at")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadRejected("bad_timestamp", f"issued_at {value!r:.40} is not a number")
    if not math.isfinite(value):
        raise PayloadRejected("bad_timestamp", f"issued_at {value!r} is not finite")
    return float(value)


class RemoteControl:
    def __init__(
        self,
        link: MqttLink,
        topics: DeviceTopics,
        backend_key: Ed25519PublicKey,
        worker: Worker,
        state_path: Path,
        *,
        max_age_s: float,
        wall_clock: Callable[[], float] = time.time,
        hold: bool = False,
    ) -> None:
        """hold: keep what arrives until release() (the app registers its handlers after
        the link is up, and a request queued on the broker arrives at the first connect)."""
        self._link = link
        self._topics = topics
        self._key = backend_key
        self._worker = worker
        self._state_path = Path(state_path)
        self._max_age_s = max_age_s
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._handlers: dict[str, CommandHandler] = {}
        self._applier: ConfigApplier | None = None
        self._held: list[Callable[[], None]] | None = [] if hold else None
        self._running: set[str] = set()  # accepted by this process, not finished
        self.config_version, self._seen = load_state(self._state_path)
        for name in COMMAND_NAMES:
            link.subscribe(topics.cmd(name), "Command", self._on_command)
        link.subscribe(topics.config_set, "ConfigSet", self._on_config)

    def register(self, name: str, handler: CommandHandler) -> None:
        if name not in COMMAND_NAMES:
            raise ValueError(f"unknown command {name!r}; the contract has {COMMAND_NAMES}")
        self._handlers[name] = handler

    def on_config(self, applier: ConfigApplier) -> None:
        self._applier = applier

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held or [])

    def release(self) -> None:
        """Handlers are registered: run what was held, and everything from now on."""
        with self._lock:
            held, self._held = self._held or [], None
        for job in held:
            self._worker.submit(job)

    def _submit(self, job: Callable[[], None]) -> bool:
        with self._lock:
            if self._held is not None:
                if len(self._held) >= MAX_HELD:
                    self._link.rejects.add("queue_full")
                    return False
                self._held.append(job)
                return True
        if not self._worker.submit(job):
            self._link.rejects.add("queue_full")
            return False
        return True

    # -- commands ---------------------------------------------------------------------

    def _on_command(self, message: Inbound) -> None:
        body = open_envelope(self._key, message.payload)
        name = message.topic.rsplit("/", 1)[-1]
        if body["device_id"] != self._topics.device_id or body["name"] != name:
            raise PayloadRejected("wrong_target", f"{body['device_id']}/{body['name']}")
        stamp = issued_at(body)
        age = self._wall_clock() - stamp
        if abs(age) > self._max_age_s:
            raise PayloadRejected("stale", f"command issued {age:.0f} s ago")
        request_id = body["request_id"]
        again: dict[str, Any] | None = None
        why = reason = ""
        with self._lock:
            seen = self._seen.get(request_id)
            if seen is None:
                self._seen[request_id] = Seen(self._wall_clock())
                self._running.add(request_id)
                self._save_state()  # before it runs: a crash mid-command never runs it twice
            else:
                again, why = self._repeat(request_id, seen)
                reason = "replay" if seen.legacy else "repeat"
        if seen is not None:
            if again is not None:
                self._publish_result(name, request_id, again)
            raise PayloadRejected(reason, f"command {request_id} {why}")
        if not self._submit(lambda: self._run_command(name, body)):
            self._finish(name, request_id, CommandOutcome(False, BUSY))

    def _repeat(self, request_id: str, seen: Seen) -> tuple[dict[str, Any] | None, str]:
        """Caller holds the lock. What a repeated request id is answered with (None: no
        answer now) and why it does not run."""
        if seen.legacy:
            return None, "already ran"
        if seen.outcome is not None:
            return seen.outcome, "already ran: its recorded result is sent again"
        if request_id in self._running:
            return None, "is running: its result follows"
        seen.outcome = {"ok": False, "detail": INTERRUPTED, "result": {}}
        self._save_state()
        return seen.outcome, "was interrupted by a stop: answered as failed"

    def _run_command(self, name: str, body: dict[str, Any]) -> None:
        handler = self._handlers.get(name)
        if handler is None:
            outcome = CommandOutcome(False, f"{name} is not supported on this terminal")
        else:
            try:
                outcome = handler(dict(body["args"]))
            except Exception as exc:
                log.exception("command %s failed", name)
                outcome = CommandOutcome(False, f"{type(exc).__name__}: {exc}"[:500])
        self._finish(name, body["request_id"], outcome)
        self._then(outcome.after)

    def _finish(self, name: str, request_id: str, outcome: CommandOutcome) -> None:
        """Record the outcome (a repeat of the request id gets it again), then publish it."""
        recorded = {"ok": outcome.ok, "detail": outcome.detail[:512], "result": outcome.result}
        with self._lock:
            self._running.discard(request_id)
            seen = self._seen.get(request_id)
            if seen is not None:
                seen.outcome = recorded
                self._save_state()
        self._publish_result(name, request_id, recorded)

    def _publish_result(self, name: str, request_id: str, outcome: dict[str, Any]) -> None:
        self._link.publish_signed(
            self._topics.cmd_result(name),
            {
                "v": 1,
                "device_id": self._topics.device_id,
                "name": name,
                "request_id": request_id,
                "ok": outcome["ok"],
                "detail": outcome["detail"],
                "result": outcome["result"],
            },
            qos=1,
        )

    def _then(self, after: Callable[[], None] | None) -> None:
        if after is None:
            return
        self._link.flush(RESULT_FLUSH_S)  # the answer first, then the restart
        try:
            after()
        except Exception:
            log.exception("step after a remote request failed")

    # -- config -----------------------------------------------------------------------

    def _on_config(self, message: Inbound) -> None:
        body = open_envelope(self._key, message.payload)
        if body["device_id"] != self._topics.device_id:
            raise PayloadRejected("wrong_target", body["device_id"])
        self._submit(lambda: self._apply_config(body))

    def _apply_config(self, body: dict[str, Any]) -> None:
        version = body["version"]
        outcome = self._config_outcome(body, version)
        if outcome.applied:
            with self._lock:
                self.config_version = version
                self._save_state()
        state: dict[str, Any] = {
            "v": 1,
            "device_id": self._topics.device_id,
            "version": version,
            "status": "applied" if outcome.applied else "refused",
            "ts": self._wall_clock(),
        }
        if outcome.reason:
            state["reason"] = outcome.reason[:512]
        self._link.publish_signed(self._topics.config_state, state, qos=1, retain=True)
        self._then(outcome.after)

    def _config_outcome(self, body: dict[str, Any], version: int) -> ConfigOutcome:
        if version <= self.config_version:
            self._link.rejects.add("replay")
            reason = f"version {version} is not above the current version {self.config_version}"
            return ConfigOutcome(False, reason)
        if self._applier is None:
            return ConfigOutcome(False, "this terminal does not accept remote configuration")
        try:
            answer = self._applier(dict(body["config"]), version)
        except Exception as exc:
            log.exception("config callback failed")
            return ConfigOutcome(False, f"{type(exc).__name__}: {exc}")
        if answer is None:
            return ConfigOutcome(True)
        if isinstance(answer, str):
            return ConfigOutcome(False, answer)
        return answer

    # -- state file ---------------------------------------------------------------------

    def _save_state(self) -> None:
        """Caller holds the lock. A request id is kept at least COMMAND_MEMORY_S (and past
        the age limit, beyond which a repeat is refused as stale anyway)."""
        horizon = self._wall_clock() - max(COMMAND_MEMORY_S, self._max_age_s + 60.0)
        self._seen = prune(self._seen, horizon)
        save_state(self._state_path, self.config_version, self._seen)
