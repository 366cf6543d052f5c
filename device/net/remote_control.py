"""Remote configuration and commands, both signed by the backend.

config/set: a versioned partial config; a version not above the last applied one is a
replay. The app's callback validates, persists and applies it, or returns the reason it
refuses; the outcome goes to config/state (retained).
cmd/{name}: resync, selftest, gate-test, reboot; each request id runs once, only while
fresh (issued_at a finite number within command_max_age_s); the handler's outcome goes to
cmd/{name}/result, and a handler's `after` step (a restart) runs once that is delivered.

The last applied config version and the request ids seen within the age limit are kept in
a small state file (written atomically and fsynced before a command runs), so a replay
stays a replay after a restart.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device.crypto.signing import write_private_file
from device.net.client import Inbound, MqttLink
from device.net.envelope import open_envelope
from device.net.schemas import PayloadRejected
from device.net.topics import COMMAND_NAMES, DeviceTopics
from device.net.worker import Worker

log = logging.getLogger(__name__)

MAX_SEEN = 4096  # request ids remembered; only those younger than the age limit matter
MAX_HELD = 64  # requests kept while the terminal starts (before its handlers are in place)
RESULT_FLUSH_S = 3.0  # how long an `after` step waits for the result to reach the broker


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
        self.config_version, self._seen = self._load_state()
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

    def _submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._held is not None:
                if len(self._held) >= MAX_HELD:
                    self._link.rejects.add("queue_full")
                    return
                self._held.append(job)
                return
        if not self._worker.submit(job):
            self._link.rejects.add("queue_full")

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
        with self._lock:
            if body["request_id"] in self._seen:
                raise PayloadRejected("replay", f"command {body['request_id']} already ran")
            self._seen[body["request_id"]] = stamp
            self._save_state()  # before it runs: a crash mid-command never runs it twice
        self._submit(lambda: self._run_command(name, body))

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
        self._link.publish_signed(
            self._topics.cmd_result(name),
            {
                "v": 1,
                "device_id": self._topics.device_id,
                "name": name,
                "request_id": body["request_id"],
                "ok": outcome.ok,
                "detail": outcome.detail[:512],
                "result": outcome.result,
            },
            qos=1,
        )
        self._then(outcome.after)

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

    def _load_state(self) -> tuple[int, dict[str, float]]:
        try:
            state = json.loads(self._state_path.read_text())
            version = int(state["config_version"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, {}
        seen = state.get("seen", {})
        if not isinstance(seen, dict):
            seen = {}
        kept = {
            str(k): float(v)
            for k, v in seen.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        return version, kept

    def _save_state(self) -> None:
        """Caller holds the lock. Ids older than the age limit are refused as stale anyway."""
        horizon = self._wall_clock() - self._max_age_s - 60.0
        fresh = sorted(((t, r) for r, t in self._seen.items() if t >= horizon), reverse=True)
        self._seen = {r: t for t, r in fresh[:MAX_SEEN]}
        state = {"config_version": self.config_version, "seen": self._seen}
        write_private_file(self._state_path, json.dumps(state).encode(), overwrite=True)
