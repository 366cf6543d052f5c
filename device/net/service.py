"""The terminal's network side in one object: the app builds it from the config, registers
its callbacks, and calls start() / stop(). Everything slow runs on one worker thread."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.core.ports import LedgerPort
from device.crypto.signing import load_public_key
from device.errors import BlinkpayError
from device.net.auth import AuthCandidate, Authorizer, AuthReply
from device.net.client import MqttLink
from device.net.config import MqttConfig
from device.net.outbox import LedgerSync
from device.net.remote_control import CommandHandler, CommandOutcome, ConfigApplier, RemoteControl
from device.net.sealed_shard import TemplateOpener
from device.net.shard_sync import ShardStorePort, ShardSync
from device.net.telemetry import AppMetrics, Telemetry, TelemetrySources
from device.net.topics import DeviceTopics
from device.net.worker import Worker

log = logging.getLogger(__name__)

STATE_FILE = "net_state.json"


class NetService:
    def __init__(
        self,
        mqtt: MqttConfig,
        device_id: str,
        *,
        ledger: LedgerPort,
        shard_store: ShardStorePort,
        metrics: AppMetrics | None = None,
        backend_key: Ed25519PublicKey | None = None,
        software: str = "",
        state_dir: Path,
        signing_key: Ed25519PrivateKey,
        template_key: X25519PrivateKey | None = None,
        hold_remote: bool = False,
    ) -> None:
        """template_key: the device's X25519 key that opens the shard's templates (None: a
        terminal that cannot take sealed templates; it refuses them and says so).
        hold_remote: keep commands and config until `remote.release()`.
        signing_key: the terminal's Ed25519 key (the one its ledger rows are signed with);
        it also signs every request and report to the host (docs/security.md)."""
        if backend_key is None:
            if mqtt.backend_public_key_file is None:
                raise BlinkpayError(
                    "mqtt.backend_public_key_file is not set; run `blinkpay provision`"
                )
            try:
                backend_key = load_public_key(mqtt.backend_public_key_file)
            except (OSError, ValueError) as exc:
                raise BlinkpayError(f"cannot load the backend public key: {exc}") from None
        self.topics = DeviceTopics(mqtt.prefix, device_id)
        self.metrics = metrics or AppMetrics()
        self.worker = Worker()
        self.link = MqttLink(
            mqtt,
            device_id,
            status_topic=self.topics.status,
            software=software,
            signing_key=signing_key,
        )
        self.authorizer = Authorizer(self.link, self.topics, mqtt.auth_timeout_s, backend_key)
        self.ledger_sync = LedgerSync(
            self.link,
            self.topics,
            ledger,
            batch=mqtt.tx_batch,
            retry_s=mqtt.tx_retry_s,
            backend_key=backend_key,
        )
        self.shard_sync = ShardSync(
            self.link,
            self.topics,
            mqtt.shard_id,
            shard_store,
            backend_key,
            self.worker,
            snapshot_timeout_s=mqtt.snapshot_timeout_s,
            max_snapshot_bytes=mqtt.max_snapshot_bytes,
            opener=TemplateOpener(device_id, template_key),
            max_age_s=mqtt.command_max_age_s,
        )
        self.remote = RemoteControl(
            self.link,
            self.topics,
            backend_key,
            self.worker,
            Path(state_dir) / STATE_FILE,
            max_age_s=mqtt.command_max_age_s,
            hold=hold_remote,
        )
        self.remote.register("resync", self._resync)
        self.telemetry = Telemetry(
            self.link,
            self.topics,
            TelemetrySources(self.metrics, self.ledger_sync.depth, self._shard_info),
            homeassistant_discovery=mqtt.homeassistant_discovery,
        )
        self._event_seq = 0
        self.link.on_connect(lambda _present: self.worker.submit(self.ledger_sync.tick))
        self.worker.every(0.5, self.ledger_sync.tick)
        self.worker.every(1.0, self.shard_sync.tick)
        self.worker.every(mqtt.telemetry_interval_s, self.telemetry.tick)
        self.worker.every(10.0, self.link.refusal_log.tick)  # summary of held-back lines

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.worker.start()
        self.link.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Flush acknowledgements into the ledger, publish `offline`, disconnect."""
        self.worker.submit(self.ledger_sync.tick)
        self.worker.stop(timeout)
        self.link.stop(timeout)

    # -- what the app calls -------------------------------------------------------------

    def authorize(
        self,
        *,
        tx_id: str,
        amount: int,
        currency: str,
        candidates: Sequence[AuthCandidate],
        timeout_s: float | None = None,
    ) -> AuthReply | None:
        """Blocks up to the auth timeout; None means offline or no answer (offline rules)."""
        return self.authorizer.authorize(
            tx_id=tx_id,
            amount=amount,
            currency=currency,
            candidates=candidates,
            timeout_s=timeout_s,
        )

    def tx_written(self) -> None:
        """Tell ledger sync a transaction was written, so it goes out now, not at the next tick."""
        self.worker.submit(self.ledger_sync.tick)

    def register_command(self, name: str, handler: CommandHandler) -> None:
        self.remote.register(name, handler)

    def on_config(self, applier: ConfigApplier) -> None:
        self.remote.on_config(applier)

    def publish_event(
        self,
        event_type: str,
        *,
        outcome: str | None = None,
        reasons: Sequence[str] = (),
        tx_id: str | None = None,
        amount: int | None = None,
    ) -> bool:
        """A decision or notable event (closed schema: no biometrics, no PIN)."""
        self._event_seq += 1
        event: dict[str, Any] = {
            "v": 1,
            "device_id": self.topics.device_id,
            "boot_id": self.link.boot_id,
            "seq": self._event_seq,
            "ts": time.time(),
            "type": event_type,
        }
        if outcome is not None:
            event["outcome"] = outcome
        if reasons:
            event["reasons"] = list(reasons)
        if tx_id is not None:
            event["tx_id"] = tx_id
        if amount is not None:
            event["amount"] = int(amount)
        return self.link.publish(self.topics.events, event, qos=1)

    def _resync(self, args: dict[str, Any]) -> CommandOutcome:
        sent = self.shard_sync.request_snapshot("resync")
        return CommandOutcome(sent, "snapshot requested" if sent else "not connected")

    def _shard_info(self) -> dict[str, Any]:
        return {
            "shard_id": self.shard_sync.shard_id,
            "version": self.shard_sync.version,
            "size": self.shard_sync.size,
        }
