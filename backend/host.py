"""PaymentHost: the reference payment host on MQTT (in-process for tests and the demo,
or `blinkpay-host serve`). Several hosts share the load through shared subscriptions."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from backend.accounts import Accounts
from backend.config import HostConfig
from backend.db import HostDb
from backend.inbound import HANDLERS, HostInbound
from backend.retemplate_inbox import RetemplateInbox, host_key_b64, load_or_make_box_key
from backend.retemplating import Migrations
from backend.settlement import expire_holds
from backend.shards import ShardPublisher
from device.crypto.signing import KeyFileError, load_signing_key
from device.crypto.template_box import box_public_pem, load_box_public_key
from device.errors import BlinkpayError
from device.net import schemas
from device.net.client import MqttLink
from device.net.envelope import seal
from device.net.topics import DeviceTopics, ShardTopics, shared

log = logging.getLogger(__name__)


def read_pin_key(path: Path) -> bytes:
    """The shared AES PIN key: a file of 32/48/64 hex digits or 16/24/32 raw bytes."""
    data = Path(path).read_bytes().strip()
    try:
        key = bytes.fromhex(data.decode())
    except (UnicodeDecodeError, ValueError):
        key = data
    if len(key) not in (16, 24, 32):
        raise BlinkpayError(f"{path}: the PIN key must be 16, 24 or 32 bytes")
    return key


class PaymentHost:
    def __init__(self, config: HostConfig, *, serve: bool = True) -> None:
        """serve=False: publish only (one-shot commands). A client that subscribes joins the
        shared subscription group, and a session left behind there would be handed a share
        of the terminals' requests that nobody answers."""
        self.config = config
        prefix = config.mqtt.prefix
        self.prefix = prefix
        try:
            signing_key = load_signing_key(config.signing_key_file)
            pin_key = read_pin_key(config.pin_key_file)
        except (OSError, ValueError, KeyFileError) as exc:
            raise BlinkpayError(f"host keys: {exc}; run `blinkpay-host keys`") from None
        threads = config.handler_threads if serve else 1
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="host-handler") if threads > 1 else None
        )
        self.db = HostDb(config.database, per_thread=self._pool is not None)
        self.accounts = Accounts(
            self.db,
            pin_key,
            config.host_id,
            config.hold_expiry_s,
            pin_max_tries=config.pin_max_tries,
            offline_floor_limit=config.offline_floor_limit,
        )
        box_key = load_or_make_box_key(config.box_key_path)
        self.shards = ShardPublisher(
            self.db,
            self.accounts,
            signing_key,
            embedder_version=config.embedder_version,
            dim=config.dim,
            chunk_bytes=config.snapshot_chunk_bytes,
            host_key_b64=host_key_b64(box_key),
        )
        defaults = {"default_version": config.embedder_version, "default_dim": config.dim}
        self.migrations = Migrations(self.db, **defaults)
        self.retemplates = RetemplateInbox(self.db, box_key, **defaults)
        self.signing_key = signing_key
        self.link = MqttLink(config.mqtt, config.host_id, handler_pool=self._pool)
        self.rejects = self.link.rejects
        self.command_results: list[dict[str, Any]] = []
        self.config_states: list[dict[str, Any]] = []
        self.shard_acks: list[dict[str, Any]] = []
        self._events = threading.Condition()
        self._stopping = threading.Event()
        self._expiry: threading.Thread | None = None
        self.inbound = HostInbound(self)
        group = config.share_group
        for suffix, message, handler in HANDLERS if serve else []:
            topic_filter = shared(f"{prefix}/dev/+/{suffix}", group)
            self.link.subscribe(topic_filter, message, getattr(self.inbound, handler))
        self._messages = [message for _, message, _ in HANDLERS] if serve else []

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, wait_s: float | None = 10.0) -> PaymentHost:
        for message in self._messages:  # the contract's validators, before the first message
            schemas.validator(message)
        self._expiry = threading.Thread(target=self._expire_holds, name="hold-expiry", daemon=True)
        self._expiry.start()
        self.link.start()
        if wait_s is not None and not self.link.wait_connected(wait_s):
            raise BlinkpayError(f"host could not reach the broker at {self.config.mqtt.url}")
        return self

    def stop(self, flush_s: float = 3.0) -> None:
        """Let the broker confirm what was published (deltas, acks), then disconnect."""
        self._stopping.set()
        self.inbound.stop()
        if self._expiry is not None:
            self._expiry.join(5.0)
        self.link.flush(flush_s)
        self.link.stop()
        if self._pool is not None:  # what is under way finishes; its ack waits for next time
            self._pool.shutdown(wait=True)
        self.db.close()

    def expire_holds(self, now: float | None = None) -> list[str]:
        """Release the holds whose terminal row has not come in `hold_expiry_s`."""
        released = self.db.retry(self._expire, time.time() if now is None else now)
        if released:
            log.info("released %d expired holds", len(released))
            self.notify()
        return released

    def _expire(self, now: float) -> list[str]:
        with self.db.transaction() as conn:
            return expire_holds(conn, now)

    def _expire_holds(self) -> None:
        while not self._stopping.wait(self.config.hold_check_s):
            try:
                self.expire_holds()
            except Exception:  # the next round tries again; the host keeps serving
                log.exception("hold expiry failed")
            self.link.refusal_log.tick()  # the summary of refused messages, if one is due

    # -- operator API ---------------------------------------------------------------------

    def register_device(
        self,
        device_id: str,
        public_key: Ed25519PublicKey | bytes,
        box_key: X25519PublicKey | bytes | None = None,
        shard_id: str | None = None,
    ) -> None:
        """Remember a terminal's signing key (its transactions are checked) and its X25519
        key (the templates of `shard_id`, default mqtt.shard_id, are sealed to it)."""
        pem = public_key
        if isinstance(public_key, Ed25519PublicKey):
            pem = public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        box_pem = None
        if box_key is not None:  # parsed now, not at the next snapshot
            key = load_box_public_key(box_key, device_id) if isinstance(box_key, bytes) else box_key
            box_pem = box_public_pem(key).decode()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO devices (device_id, public_key_pem, box_key_pem, home_shard)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET"
                " public_key_pem = excluded.public_key_pem,"
                " box_key_pem = COALESCE(excluded.box_key_pem, devices.box_key_pem),"
                " home_shard = excluded.home_shard",
                (device_id, bytes(pem).decode(), box_pem, shard_id or self.config.mqtt.shard_id),
            )
        self.inbound.keys.forget(device_id)
        self.shards.ensure(shard_id or self.config.mqtt.shard_id)

    def enrol(
        self,
        token: str,
        vector: np.ndarray,
        *,
        shard_id: str,
        daily_limit: int = 10_000,
        offline_allowance: int = 1_000,
        balance: int = 10_000,
        pin: str | None = None,
        embedder_version: str | None = None,
        publish: bool = True,
    ) -> dict[str, Any]:
        account = {
            "status": "active",
            "daily_limit": daily_limit,
            "offline_allowance": offline_allowance,
        }
        delta = self.db.retry(
            self.shards.enrol,
            token,
            vector,
            shard_id=shard_id,
            account=account,
            balance=balance,
            pin=pin,
            embedder_version=embedder_version,
        )
        if publish:
            self.publish_delta(delta)
        return delta

    def change(self, token: str, op: str, publish: bool = True) -> dict[str, Any]:
        delta = self.db.retry(self.shards.change, token, op)
        if op == "delete":
            self.db.checkpoint()  # the erased template leaves the WAL too
        if publish:
            self.publish_delta(delta)
        return delta

    def publish_delta(self, delta: dict[str, Any]) -> bool:
        """Publish a signed delta; a terminal that misses one sees a gap and asks for a snapshot."""
        topic = ShardTopics(self.prefix, delta["shard_id"]).delta
        return self.link.publish(topic, self.shards.delta_envelope(delta), qos=1)

    def publish_snapshot(
        self, shard_id: str, *, create: bool = True, nonce: str | None = None
    ) -> int:
        """Publish the shard's signed snapshot; its version, or 0 when nothing went out (not
        connected, or `create=False` and the operator never made the shard). `nonce`: the
        terminal's request it answers (a terminal with no shard yet takes only that)."""
        snapshot = self.db.retry(self.shards.snapshot, shard_id, create=create)
        if snapshot is None:
            return 0
        topic = ShardTopics(self.prefix, shard_id).snapshot
        envelopes = self.shards.snapshot_envelopes(snapshot, nonce)
        for envelope in envelopes:
            if not self.link.publish(topic, envelope, qos=1):
                return 0
        return int(snapshot["version"])

    def send_config(self, device_id: str, version: int, config: dict[str, Any]) -> bool:
        body = {"kind": "config", "device_id": device_id, "version": version, "config": config}
        topic = DeviceTopics(self.prefix, device_id).config_set
        return self.link.publish(topic, seal(self.signing_key, body), qos=1)

    def send_command(self, device_id: str, name: str, args: dict[str, Any] | None = None) -> str:
        request_id = uuid.uuid4().hex
        self.publish_command(device_id, name, request_id, args)
        return request_id

    def publish_command(
        self, device_id: str, name: str, request_id: str, args: dict[str, Any] | None = None
    ) -> bool:
        """Sign and publish a command, issued now; the same request id published again (a
        command held while its terminal was away, or sent again for want of a result) runs
        once: the terminal remembers it and answers a repeat with the result it recorded.
        False when the broker link is down (nothing was queued)."""
        body = {
            "kind": "cmd",
            "device_id": device_id,
            "name": name,
            "request_id": request_id,
            "issued_at": time.time(),
            "args": args or {},
        }
        topic = DeviceTopics(self.prefix, device_id).cmd(name)
        return self.link.publish(topic, seal(self.signing_key, body), qos=1)

    def home_shard(self, device_id: str) -> str | None:
        """The shard the operator registered the terminal for (None: not registered)."""
        rows = self.db.query(
            "SELECT home_shard FROM devices WHERE device_id = ? AND public_key_pem IS NOT NULL",
            [device_id],
        )
        return rows[0]["home_shard"] if rows else None

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait until `predicate(host)` holds (tests and the demo watch host state)."""
        deadline = time.monotonic() + timeout
        with self._events:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._events.wait(min(remaining, 0.1))
        return True

    def notify(self) -> None:
        with self._events:
            self._events.notify_all()
