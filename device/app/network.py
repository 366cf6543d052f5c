"""The terminal's network side: the MQTT service over the store (ledger sync, shard sync,
authorization, telemetry, remote requests), the host port the terminal asks, the hourly
ledger pruning, and the decisions counted for telemetry."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device import __version__
from device.app.parts import Parts
from device.config import Config, replay_defence
from device.crypto.signing import load_signing_key
from device.crypto.template_box import load_box_key
from device.shell.effects import Observer
from device.shell.host import NetHost
from device.shell.terminal import Post
from device.store.terminal_store import Store

if TYPE_CHECKING:
    from device.net.service import NetService
    from device.net.telemetry import AppMetrics

log = logging.getLogger("blinkpay.app")

PRUNE_EVERY_S = 3600.0  # at start, then hourly: acked ledger rows past the retention go


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
