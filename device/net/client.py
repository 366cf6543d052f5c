"""The MQTT link: paho-mqtt 2.x with MQTT 5 (3.1.1 fallback), TLS / mutual TLS, a retained
status with a last will, reconnects with exponential backoff and jitter, QoS 1 sessions
that survive reconnects. Its parts: the inbound side (routes, validation, counted
refusals, acks) in device/net/dispatch.py, the QoS 1 publishes in flight in
device/net/pubacks.py, the status documents in device/net/link_status.py, the paho client
itself in device/net/paho_client.py.

One network thread runs paho's loop; handlers run on it and must be quick (the services
hand anything touching the store or the hardware to the app's thread through `pump`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from device.crypto.signing import sign_document
from device.errors import BlinkpayError
from device.net import schemas
from device.net.config import MqttConfig, broker_password
from device.net.dispatch import Dispatcher, Handler, Inbound
from device.net.link_status import LinkStatus
from device.net.paho_client import new_client, publish_properties
from device.net.pubacks import Pubacks
from device.net.refusals import RefusalLog, RejectCounter

# Inbound: the handlers' argument, part of this link's interface
__all__ = ["Inbound", "MqttLink", "backoff_delay", "no_delay"]

log = logging.getLogger(__name__)

# CONNACK codes meaning "this broker does not speak MQTT 5" (v5 reason 132, v3 return code 1).
_UNSUPPORTED_PROTOCOL = {132, 1}


def no_delay(sock: Any) -> None:
    """TCP_NODELAY on an MQTT socket: small packets (a PUBACK, an answer) go at once. With
    Nagle's algorithm on, a packet written while an earlier one is unacknowledged waits
    for the peer's delayed ACK, some 40 ms on Linux, on every request and answer."""
    with contextlib.suppress(AttributeError, OSError):  # a test's fake, or already closed
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half the step fixed, half random."""
    step = min(high, low * (2 ** min(attempt, 30)))
    return step / 2 + rng.uniform(0, step / 2)


class MqttLink:
    """A supervised MQTT connection with one owner id (the device id, or a host id)."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        *,
        status_topic: str | None = None,
        software: str = "",
        rejects: RejectCounter | None = None,
        rng: random.Random | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        handler_pool: Executor | None = None,
    ) -> None:
        """signing_key: the terminal's own Ed25519 key; `publish_signed` signs with it
        what the host must be able to attribute to this terminal (docs/security.md).

        handler_pool: run the handlers there, several at a time (the host's workers),
        and acknowledge each QoS 1 message only once its handler has returned (paho's
        manual ack): a process killed mid-handler leaves it unacknowledged, delivered again
        if its broker session is kept (session_expiry_s > 0) and it comes back; a host
        keeps none, and the terminal's resend makes up for it. Without a pool the handlers
        run on the network thread and paho acknowledges after each."""
        self.config = config
        self._signing_key = signing_key
        self.client_id = client_id
        self.status_topic = status_topic
        self._status_docs = LinkStatus(client_id, software)
        self.rejects = rejects or RejectCounter()
        self.refusal_log = RefusalLog()
        self.dispatcher = Dispatcher(
            config.max_payload_bytes, self.rejects, self.refusal_log, handler_pool
        )
        self._pubacks = Pubacks()
        self.protocol: str = "3.1.1" if config.protocol == "3.1.1" else "5"
        self._rng = rng or random.Random()
        self._connect_listeners: list[Callable[[bool], None]] = []
        self._connected = threading.Event()
        self._subscribed = threading.Event()  # every route's SUBACK is in
        self._suback_pending: set[int] = set()
        self._stop = threading.Event()
        self._ever_connected = False
        self._connack_refused: int | None = None
        self._thread: threading.Thread | None = None
        url = urlparse(config.url)
        self._tls = url.scheme == "mqtts"
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (8883 if self._tls else 1883)
        self._credential: tuple[str, str] | None = None  # read by start()
        self._client = self._new_client()

    # -- public API -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def boot_id(self) -> str:
        return self._status_docs.boot_id

    @property
    def broker_rtt_ms(self) -> float | None:
        """The round trip of the last QoS 1 publish the broker acknowledged."""
        return self._pubacks.rtt_ms

    def wait_connected(self, timeout: float) -> bool:
        """Connected and subscribed: from then on, nothing sent to our topics is missed."""
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            return False
        return self._subscribed.wait(max(0.0, deadline - time.monotonic()))

    def on_connect(self, listener: Callable[[bool], None]) -> None:
        """`listener(session_present)` runs on the network thread after each CONNACK."""
        self._connect_listeners.append(listener)

    def subscribe(self, topic_filter: str, message: str, handler: Handler, qos: int = 1) -> None:
        """Route messages on `topic_filter` through the `message` schema to `handler`.

        Call before start(); subscriptions are renewed on every connect."""
        self.dispatcher.add(topic_filter, message, handler, qos)

    def publish(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        expiry_s: int | None = None,
    ) -> bool:
        """Publish JSON; False (nothing queued) when not connected. expiry_s (MQTT 5): the
        broker drops the message if it has not been delivered by then."""
        if not self.connected:
            return False
        properties = None
        if self.protocol == "5":  # MQTT 3.1.1 has no properties
            properties = publish_properties(response_topic, correlation_data, expiry_s)
        info = self._client.publish(
            topic, schemas.dumps(payload), qos=qos, retain=retain, properties=properties
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        if qos > 0:
            self._pubacks.sent(info.mid)
        return True

    def publish_signed(self, topic: str, payload: dict[str, Any], **kwargs: Any) -> bool:
        """Publish `payload` with this terminal's signature over its canonical JSON: the
        host refuses every state-changing message it cannot verify against the key it
        registered for the topic's device id."""
        if self._signing_key is None:
            raise BlinkpayError(f"{self.client_id}: no signing key to sign {topic} with")
        signed = {k: v for k, v in payload.items() if k != "signature"}
        signed["signature"] = sign_document(signed, self._signing_key)
        return self.publish(topic, signed, **kwargs)

    def flush(self, timeout: float) -> bool:
        """Wait until the broker has acknowledged every QoS 1 publish; False on timeout."""
        return self._pubacks.wait(timeout, lambda: self.connected)

    def start(self) -> None:
        """Connect in the background. The broker credential ([mqtt] username and
        password_file) is read now: a missing or unreadable file is a BlinkpayError here."""
        if self._thread is not None:
            return
        if self.config.username is not None and self.config.password_file is not None:
            password = broker_password(self.config.password_file)
            self._credential = (self.config.username, password)
            self._client.username_pw_set(*self._credential)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Publish `offline` (retained, reason shutdown), disconnect cleanly (no last will)."""
        if self._thread is None:
            return
        if self.connected and self.status_topic:
            info = self._client.publish(
                self.status_topic,
                schemas.dumps(self._status("offline", reason="shutdown")),
                qos=1,
                retain=True,
            )
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                log.warning("offline status not confirmed before shutdown")
        self._stop.set()
        self._client.disconnect()
        self._thread.join(timeout)
        self._thread = None
        self._connected.clear()

    # -- connection supervision -------------------------------------------------------

    def _new_client(self) -> mqtt.Client:
        client = new_client(
            self.config,
            self.client_id,
            self.protocol,
            tls=self._tls,
            manual_ack=self.dispatcher.manual_ack,
            credential=self._credential,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self.dispatcher.on_message
        client.on_publish = self._pubacks.on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def publish_fault(self, topic: str, reason: str, detail: str, timeout: float = 5.0) -> bool:
        """A retained `fault` status on `topic`, from a link made without a status topic (no
        `online`, no last will): the terminal will not start. True once the broker has it."""
        status = {**self._status("fault", reason), "detail": detail[:512]}
        return self.publish(topic, status, qos=1, retain=True) and self.flush(timeout)

    def _status(self, state: str, reason: str | None = None) -> dict[str, Any]:
        return self._status_docs.document(state, self.protocol, reason)

    def _connect_once(self) -> None:
        if self.status_topic:
            will = self._status_docs.last_will(self.protocol)
            self._client.will_set(self.status_topic, schemas.dumps(will), qos=1, retain=True)
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.config.session_expiry_s
            self._client.connect(
                self.host,
                self.port,
                keepalive=self.config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            self._client.connect(self.host, self.port, keepalive=self.config.keepalive_s)
        no_delay(self._client.socket())

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._connack_refused = None
            try:
                self._connect_once()
            except (OSError, ssl.SSLError, ValueError) as exc:
                log.info("mqtt connect to %s:%s failed: %s", self.host, self.port, exc)
            else:
                while not self._stop.is_set():
                    if self._client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS:
                        break
                    if self._connack_refused is not None:
                        break
                self._connected.clear()
                if self._connected_since_attempt():
                    attempt = 0
            if self._stop.is_set():
                break
            if self._should_fall_back():
                log.warning("broker refused MQTT 5; falling back to MQTT 3.1.1")
                self.protocol = "3.1.1"
                self._client = self._new_client()
                continue
            delay = backoff_delay(
                attempt, self.config.reconnect_min_s, self.config.reconnect_max_s, self._rng
            )
            attempt += 1
            self._stop.wait(delay)

    def _connected_since_attempt(self) -> bool:
        return self._connack_refused is None and self._ever_connected

    def _should_fall_back(self) -> bool:
        return (
            self.config.protocol == "auto"
            and self.protocol == "5"
            and not self._ever_connected
            and self._connack_refused in _UNSUPPORTED_PROTOCOL
        )

    # -- paho callbacks (network thread) ----------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._connack_refused = int(reason_code.value)
            log.warning("broker refused the connection: %s", reason_code)
            return
        self._ever_connected = True
        self._subscribed.clear()
        self._suback_pending = self.dispatcher.subscribe_all(client)
        if not self._suback_pending:
            self._subscribed.set()
        if self.status_topic:
            client.publish(
                self.status_topic, schemas.dumps(self._status("online")), qos=1, retain=True
            )
        self._connected.set()
        log.info("mqtt connected to %s:%s (MQTT %s)", self.host, self.port, self.protocol)
        for listener in self._connect_listeners:
            try:
                listener(bool(flags.session_present))
            except Exception:
                log.exception("connect listener failed")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if not self._stop.is_set():
            log.info("mqtt disconnected: %s", reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [rc for rc in reason_codes if rc.is_failure]
        if refused:  # e.g. a broker ACL: say so, the rest of the link still works
            log.warning("broker refused a subscription: %s", refused)
        self._suback_pending.discard(mid)
        if not self._suback_pending:
            self._subscribed.set()
