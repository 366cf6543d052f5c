"""Topic names of the MQTT contract (docs/asyncapi.yaml, channels)."""

from __future__ import annotations

from dataclasses import dataclass

SHARE_GROUP = "blinkpay-hosts"
COMMAND_NAMES = ("resync", "selftest", "gate-test", "reboot")
# A terminal remembers a command's request id (and the outcome it recorded) at least this
# long after it accepted it: the console re-sends a delivered command with no result only
# well within it (backend/console/commands.py), so a re-sent command never runs twice.
COMMAND_MEMORY_S = 86400.0


@dataclass(frozen=True)
class DeviceTopics:
    prefix: str
    device_id: str

    def _t(self, suffix: str) -> str:
        return f"{self.prefix}/dev/{self.device_id}/{suffix}"

    @property
    def status(self) -> str:
        return self._t("status")

    @property
    def telemetry(self) -> str:
        return self._t("telemetry")

    @property
    def events(self) -> str:
        return self._t("events")

    @property
    def tx(self) -> str:
        return self._t("tx")

    @property
    def tx_ack(self) -> str:
        return self._t("tx/ack")

    @property
    def auth_req(self) -> str:
        return self._t("auth/req")

    @property
    def auth_resp(self) -> str:
        return self._t("auth/resp")

    @property
    def config_set(self) -> str:
        return self._t("config/set")

    @property
    def config_state(self) -> str:
        return self._t("config/state")

    @property
    def shard_req(self) -> str:
        return self._t("shard/req")

    @property
    def shard_ack(self) -> str:
        return self._t("shard/ack")

    @property
    def retemplate(self) -> str:
        return self._t("retemplate")

    @property
    def register_req(self) -> str:
        return self._t("register/req")

    @property
    def register_resp(self) -> str:
        return self._t("register/resp")

    def cmd(self, name: str) -> str:
        return self._t(f"cmd/{name}")

    def cmd_result(self, name: str) -> str:
        return self._t(f"cmd/{name}/result")


@dataclass(frozen=True)
class ShardTopics:
    prefix: str
    shard_id: str

    @property
    def snapshot(self) -> str:
        return f"{self.prefix}/shard/{self.shard_id}/snapshot"

    @property
    def delta(self) -> str:
        return f"{self.prefix}/shard/{self.shard_id}/delta"


def device_id_of(prefix: str, topic: str) -> str | None:
    """The {device_id} of a per-device topic, or None when the topic is not one."""
    head = f"{prefix}/dev/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head) :]
    device_id, _, tail = rest.partition("/")
    return device_id if device_id and tail else None


def shared(filter_: str, group: str = SHARE_GROUP) -> str:
    """A shared subscription so several hosts split the messages of one topic filter."""
    return f"$share/{group}/{filter_}"


# Topic tail (after {prefix}/dev/{device_id}/) -> components/messages/<name> in the spec.
_DEVICE_MESSAGES = {
    "status": "DeviceStatus",
    "telemetry": "Telemetry",
    "events": "Event",
    "tx": "Transaction",
    "tx/ack": "TxAck",
    "auth/req": "AuthRequest",
    "auth/resp": "AuthResponse",
    "config/set": "ConfigSet",
    "config/state": "ConfigState",
    "shard/req": "ShardRequest",
    "shard/ack": "ShardAck",
    "retemplate": "Retemplate",
    "register/req": "RegisterRequest",
    "register/resp": "RegisterResponse",
}


def message_for_topic(prefix: str, topic: str) -> str | None:
    """The spec's message name for a topic of the contract (dashboards, tests), else None."""
    if topic.startswith(f"{prefix}/shard/"):
        tail = topic.rsplit("/", 1)[-1]
        return {"snapshot": "ShardSnapshotChunk", "delta": "ShardDelta"}.get(tail)
    if device_id_of(prefix, topic) is None:
        return None
    tail = topic.split("/dev/", 1)[1].split("/", 1)[1]
    if tail.startswith("cmd/"):
        parts = tail.split("/")
        if len(parts) == 2 and parts[1] in COMMAND_NAMES:
            return "Command"
        if len(parts) == 3 and parts[1] in COMMAND_NAMES and parts[2] == "result":
            return "CommandResult"
        return None
    return _DEVICE_MESSAGES.get(tail)
