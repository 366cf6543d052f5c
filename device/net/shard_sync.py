"""Shard sync: signed snapshots (chunked, hashed) and sequenced signed deltas.

Every message is checked before the store sees it: the backend's Ed25519 signature, the
shard id, the sequence against replay (a delta must be version + 1; older is a replay, a
jump is a gap that asks for a snapshot). Chunks are reassembled, hash-checked and
validated against the ShardSnapshot schema. Templates arrive sealed to this device
(device/net/sealed_shard.py) and are opened just before the store sees them. Applies go
through the store API on the worker thread; each applied version is acknowledged on
shard/ack.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device.net import schemas
from device.net.client import Inbound, MqttLink
from device.net.envelope import open_envelope
from device.net.schemas import PayloadRejected
from device.net.sealed_shard import TemplateOpener
from device.net.topics import DeviceTopics, ShardTopics
from device.net.worker import Worker

log = logging.getLogger(__name__)

NONCES_KEPT = 8  # requests a snapshot may answer (one per snapshot timeout)


@dataclass(frozen=True)
class ShardState:
    version: int | None  # None: no shard yet
    size: int


@dataclass(frozen=True)
class ApplyOutcome:
    """The store's answer, reduced to what sync acts on."""

    status: str  # applied | duplicate | gap | refused
    reason: str = ""


class ShardStorePort(Protocol):
    """What shard sync needs from the store (an adapter maps device/store onto it)."""

    def apply_snapshot(self, snapshot: dict[str, Any]) -> ApplyOutcome: ...

    def apply_delta(self, delta: dict[str, Any]) -> ApplyOutcome: ...

    def shard_state(self) -> ShardState: ...


@dataclass
class _Assembly:
    count: int
    size: int
    started: float
    chunks: dict[int, bytes] = field(default_factory=dict)


class ShardSync:
    def __init__(
        self,
        link: MqttLink,
        device_topics: DeviceTopics,
        shard_id: str,
        store: ShardStorePort,
        backend_key: Ed25519PublicKey,
        worker: Worker,
        *,
        snapshot_timeout_s: float,
        max_snapshot_bytes: int,
        opener: TemplateOpener | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_age_s: float = 300.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """max_age_s: how old a snapshot nobody here asked for may be when this terminal
        has no shard yet (an operator's push; mqtt.command_max_age_s)."""
        self._link = link
        # The nonces of this terminal's recent snapshot requests: until it has a shard, it
        # takes only a snapshot the host made in answer to one of them (docs/security.md).
        self._nonces: deque[str] = deque(maxlen=NONCES_KEPT)
        self._max_age_s = max_age_s
        self._wall_clock = wall_clock
        self._dev = device_topics
        self._shard = ShardTopics(device_topics.prefix, shard_id)
        self.shard_id = shard_id
        self._store = store
        self._key = backend_key
        self._worker = worker
        self._timeout = snapshot_timeout_s
        self._max_bytes = max_snapshot_bytes
        self._clock = clock
        self._opener = opener or TemplateOpener(device_topics.device_id, None)
        self._lock = threading.Lock()
        self._assemblies: dict[tuple[int, str], _Assembly] = {}
        self._want_snapshot = False
        self._last_request = -1e9
        state = store.shard_state()
        self.version: int | None = state.version
        self.size = state.size
        self.applied = 0
        link.subscribe(self._shard.delta, "ShardDelta", self._on_delta)
        link.subscribe(self._shard.snapshot, "ShardSnapshotChunk", self._on_chunk)
        link.on_connect(self._on_connect)

    # -- network thread: check, then hand over to the worker ---------------------------

    def _on_connect(self, session_present: bool) -> None:
        if self.version is None:
            self.request_snapshot("boot")
        else:
            self._ack()

    def _on_delta(self, message: Inbound) -> None:
        body = open_envelope(self._key, message.payload)
        if body.get("kind") != "delta":
            raise PayloadRejected("wrong_kind", str(body.get("kind")))
        delta = body["delta"]
        if delta["shard_id"] != self.shard_id:
            raise PayloadRejected("wrong_shard", delta["shard_id"])
        with self._lock:
            version = self.version
        if version is not None and delta["seq"] <= version:
            raise PayloadRejected("replay", f"delta seq {delta['seq']} <= version {version}")
        delta = self._opener.delta(delta)  # templates are sealed on the wire
        if not self._worker.submit(lambda: self._apply_delta(delta)):
            self._link.rejects.add("queue_full")

    def _on_chunk(self, message: Inbound) -> None:
        body = open_envelope(self._key, message.payload)
        if body.get("kind") != "snapshot_chunk":
            raise PayloadRejected("wrong_kind", str(body.get("kind")))
        if body["shard_id"] != self.shard_id:
            raise PayloadRejected("wrong_shard", body["shard_id"])
        version = body["version"]
        with self._lock:
            current, wanted = self.version, self._want_snapshot
        if current is None and not self._fresh(body):  # see _finish_snapshot
            raise PayloadRejected("unrequested_snapshot", f"snapshot v{version}")
        if current is not None and version < current:
            raise PayloadRejected("replay", f"snapshot version {version} < {current}")
        if current is not None and version == current and not wanted:
            return  # another terminal asked for it; we already hold this version
        if body["size"] > self._max_bytes:
            raise PayloadRejected("oversize", f"snapshot of {body['size']} bytes")
        if body["index"] >= body["count"]:
            raise PayloadRejected("malformed", "chunk index beyond count")
        try:
            data = base64.b64decode(body["data_b64"], validate=True)
        except binascii.Error:
            raise PayloadRejected("malformed", "chunk data is not base64") from None
        complete = self._add_chunk(body, data)
        if complete is not None:
            self._worker.submit(lambda: self._finish_snapshot(body, complete))

    def _fresh(self, body: dict[str, Any]) -> bool:
        """An answer to one of our requests, or a push issued within max_age_s."""
        with self._lock:
            if body.get("nonce") in self._nonces:
                return True
        issued = body.get("issued_at")
        if isinstance(issued, bool) or not isinstance(issued, int | float):
            return False
        return abs(self._wall_clock() - issued) <= self._max_age_s

    def _add_chunk(self, body: dict[str, Any], data: bytes) -> bytes | None:
        key = (body["version"], body["sha256"])
        now = self._clock()
        with self._lock:
            expired = [k for k, a in self._assemblies.items() if now - a.started > self._timeout]
            for stale in expired:
                del self._assemblies[stale]
            assembly = self._assemblies.get(key)
            if assembly is None:
                if len(self._assemblies) >= 2:  # bound memory: at most two in progress
                    oldest = min(self._assemblies, key=lambda k: self._assemblies[k].started)
                    del self._assemblies[oldest]
                assembly = self._assemblies[key] = _Assembly(body["count"], body["size"], now)
            if assembly.count != body["count"] or assembly.size != body["size"]:
                raise PayloadRejected("malformed", "chunk header differs from its snapshot")
            assembly.chunks[body["index"]] = data
            if sum(len(c) for c in assembly.chunks.values()) > assembly.size:
                del self._assemblies[key]
                raise PayloadRejected("oversize", "chunks exceed the announced size")
            if len(assembly.chunks) < assembly.count:
                return None
            del self._assemblies[key]
        return b"".join(assembly.chunks[i] for i in range(assembly.count))

    # -- worker thread: store applies ---------------------------------------------------

    def _finish_snapshot(self, header: dict[str, Any], blob: bytes) -> None:
        if len(blob) != header["size"] or hashlib.sha256(blob).hexdigest() != header["sha256"]:
            self._link.rejects.add("bad_hash")
            self.request_snapshot("bad_snapshot")
            return
        try:
            snapshot = json.loads(blob)
            schemas.check_schema("ShardSnapshot", snapshot)
        except (ValueError, PayloadRejected) as exc:
            self._link.rejects.add("malformed")
            log.error("snapshot refused: %s", exc)
            return
        if snapshot["shard_id"] != self.shard_id or snapshot["version"] != header["version"]:
            self._link.rejects.add("malformed")
            return
        with self._lock:
            fresh_needed = self.version is None
        if fresh_needed and not self._fresh(header):
            # An old signed snapshot replayed to a terminal that never synced (the host
            # down) would install customers erased since: only an answer to our request
            # or a fresh push.
            self._link.rejects.add("unrequested_snapshot")
            log.error("snapshot v%s refused: not an answer to our request", header["version"])
            return
        try:
            snapshot = self._opener.snapshot(snapshot)  # templates are sealed on the wire
        except PayloadRejected as exc:
            self._link.rejects.add(exc.reason)
            log.error("snapshot v%s refused: %s", header["version"], exc)
            return
        outcome = self._store.apply_snapshot(snapshot)
        if outcome.status in ("applied", "duplicate"):
            with self._lock:
                self._want_snapshot = False
        if outcome.status == "duplicate":
            self._ack()  # asked for (resync) while already up to date: nothing to apply
            return
        self._after_apply(outcome, "snapshot")

    def _apply_delta(self, delta: dict[str, Any]) -> None:
        with self._lock:
            version = self.version
        if version is None or delta["seq"] > version + 1:
            self._link.rejects.add("gap")
            self.request_snapshot("gap", want_seq=delta["seq"])
            return
        if delta["seq"] <= version:
            self._link.rejects.add("replay")
            return
        self._after_apply(self._store.apply_delta(delta), "delta")

    def _after_apply(self, outcome: ApplyOutcome, what: str) -> None:
        if outcome.status == "applied":
            state = self._store.shard_state()
            with self._lock:
                self.version, self.size = state.version, state.size
            self.applied += 1
            self._ack()
        elif outcome.status == "duplicate":
            self._link.rejects.add("replay")
        elif outcome.status == "gap":
            self._link.rejects.add("gap")
            self.request_snapshot("gap")
        else:
            self._link.rejects.add("store_refused")
            log.error("store refused the %s: %s", what, outcome.reason)
            if what == "delta":
                self.request_snapshot("refused")

    # -- requests and acknowledgements --------------------------------------------------

    def tick(self) -> None:
        """Ask again while a snapshot is wanted: a request made before any host listened
        (or lost with a broker) is not answered, and a terminal must not wait for a delta."""
        with self._lock:
            wanted = self._want_snapshot
        if wanted and self._link.connected:
            self.request_snapshot("boot" if self.version is None else "gap")

    def request_snapshot(self, reason: str, want_seq: int | None = None) -> bool:
        """Ask the host for a full snapshot (rate limited to one per snapshot timeout)."""
        now = self._clock()
        with self._lock:
            self._want_snapshot = True
            if now - self._last_request < min(self._timeout, 5.0) and reason != "resync":
                return False
            self._last_request = now
            version = self.version
        nonce = secrets.token_hex(16)
        with self._lock:
            self._nonces.append(nonce)
        payload: dict[str, Any] = {
            "v": 1,
            "device_id": self._dev.device_id,
            "shard_id": self.shard_id,
            "reason": reason,
            "have_version": version,
            "nonce": nonce,
        }
        if want_seq is not None:
            payload["want_seq"] = want_seq
        return self._link.publish_signed(self._dev.shard_req, payload, qos=1)

    def _ack(self) -> None:
        with self._lock:
            version, size = self.version, self.size
        if version is None:
            return
        self._link.publish_signed(
            self._dev.shard_ack,
            {
                "v": 1,
                "device_id": self._dev.device_id,
                "shard_id": self.shard_id,
                "version": version,
                "size": size,
            },
            qos=1,
        )


class TemplateShardPort:
    """Maps device/store's TemplateShard (ApplyResult outcomes) onto ShardStorePort."""

    _STATUS: ClassVar[dict[str, str]] = {
        "applied": "applied",
        "duplicate": "duplicate",
        "needs_snapshot": "gap",
    }

    def __init__(self, shard: Any) -> None:
        self._shard = shard

    def _outcome(self, result: Any) -> ApplyOutcome:
        status = self._STATUS.get(result.outcome, "refused")
        return ApplyOutcome(status, f"{result.reason or ''} {result.detail}".strip())

    def apply_snapshot(self, snapshot: dict[str, Any]) -> ApplyOutcome:
        return self._outcome(self._shard.apply_snapshot(snapshot))

    def apply_delta(self, delta: dict[str, Any]) -> ApplyOutcome:
        return self._outcome(self._shard.apply_delta(delta))

    def shard_state(self) -> ShardState:
        info = self._shard.info()
        return ShardState(info.version if info else None, len(self._shard.index))
