"""Remote configuration and commands, both signed by the backend.

config/set: a versioned partial config; a version not above the last applied one is a
replay. The app's callback applies it live or returns the reason it refuses; the outcome
goes to config/state (retained). The last applied version is kept in a small state file so
a replay stays a replay after a restart.
cmd/{name}: resync, selftest, gate-test, reboot; each request id runs once, only while
fresh (issued_at within command_max_age_s); the handler's outcome goes to cmd/{name}/result.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device.net.client import Inbound, MqttLink
from device.net.envelope import open_envelope
from device.net.schemas import PayloadRejected
from device.net.topics import COMMAND_NAMES, DeviceTopics
from device.net.worker import Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandOutcome:
    ok: bool
    detail: str
    result: dict[str, Any] = field(default_factory=dict)


CommandHandler = Callable[[dict[str, Any]], CommandOutcome]
# Returns None when the partial config was applied, else the reason it was refused.
ConfigApplier = Callable[[dict[str, Any], int], str | None]


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
    ) -> None:
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
        self._seen: deque[str] = deque(maxlen=512)
        self.config_version = self._load_version()
        for name in COMMAND_NAMES:
            link.subscribe(topics.cmd(name), "Command", self._on_command)
        link.subscribe(topics.config_set, "ConfigSet", self._on_config)

    def register(self, name: str, handler: CommandHandler) -> None:
        if name not in COMMAND_NAMES:
            raise ValueError(f"unknown command {name!r}; the contract has {COMMAND_NAMES}")
        self._handlers[name] = handler

    def on_config(self, applier: ConfigApplier) -> None:
        self._applier = applier

    # -- commands ---------------------------------------------------------------------

    def _on_command(self, message: Inbound) -> None:
        body = open_envelope(self._key, message.payload)
        name = message.topic.rsplit("/", 1)[-1]
        if body["device_id"] != self._topics.device_id or body["name"] != name:
            raise PayloadRejected("wrong_target", f"{body['device_id']}/{body['name']}")
        age = self._wall_clock() - body["issued_at"]
        if abs(age) > self._max_age_s:
            raise PayloadRejected("stale", f"command issued {age:.0f} s ago")
        with self._lock:
            if body["request_id"] in self._seen:
                raise PayloadRejected("replay", f"command {body['request_id']} already ran")
            self._seen.append(body["request_id"])
        self._worker.submit(lambda: self._run_command(name, body))

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
        self._link.publish(
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

    # -- config -----------------------------------------------------------------------

    def _on_config(self, message: Inbound) -> None:
        body = open_envelope(self._key, message.payload)
        if body["device_id"] != self._topics.device_id:
            raise PayloadRejected("wrong_target", body["device_id"])
        self._worker.submit(lambda: self._apply_config(body))

    def _apply_config(self, body: dict[str, Any]) -> None:
        version = body["version"]
        if version <= self.config_version:
            self._link.rejects.add("replay")
            reason = f"version {version} is not above the current version {self.config_version}"
        elif self._applier is None:
            reason = "this terminal does not accept remote configuration"
        else:
            try:
                reason = self._applier(dict(body["config"]), version)
            except Exception as exc:
                log.exception("config callback failed")
                reason = f"{type(exc).__name__}: {exc}"
        if reason is None:
            self.config_version = version
            self._save_version(version)
        self._link.publish(
            self._topics.config_state,
            {
                "v": 1,
                "device_id": self._topics.device_id,
                "version": version,
                "status": "applied" if reason is None else "refused",
                **({"reason": reason[:512]} if reason else {}),
                "ts": self._wall_clock(),
            },
            qos=1,
            retain=True,
        )

    def _load_version(self) -> int:
        try:
            return int(json.loads(self._state_path.read_text())["config_version"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def _save_version(self, version: int) -> None:
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_name(self._state_path.name + ".tmp")
        tmp.write_text(json.dumps({"config_version": version}))
        os.replace(tmp, self._state_path)
