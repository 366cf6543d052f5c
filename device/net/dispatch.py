"""The MQTT link's inbound side: routes from topic filters to handlers, every payload
validated against its schema in docs/asyncapi.yaml before a handler sees it, refusals
counted by reason, and (with a handler pool) each QoS 1 message acknowledged only once its
handler has returned."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from device.net import schemas
from device.net.refusals import RefusalLog, RejectCounter
from device.net.schemas import PayloadRejected

__all__ = ["Dispatcher", "Handler", "Inbound", "Route"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    """A validated inbound message."""

    topic: str
    payload: dict[str, Any]
    correlation_data: bytes | None = None
    response_topic: str | None = None
    retain: bool = False
    # MQTT 5 message expiry left when the broker delivered it (None: it does not expire)
    expires_in_s: int | None = None


Handler = Callable[[Inbound], None]


@dataclass
class Route:
    filter: str  # the filter as matched against topics (no $share/<group>/ prefix)
    subscribe_as: str
    message: str  # components/messages/<message> in docs/asyncapi.yaml
    handler: Handler
    qos: int


class Dispatcher:
    """Routes, validates and (with a pool) acknowledges the messages of one link."""

    def __init__(
        self,
        max_payload_bytes: int,
        rejects: RejectCounter,
        refusal_log: RefusalLog,
        pool: Executor | None,
    ) -> None:
        self.routes: list[Route] = []
        self.rejects = rejects
        self.refusal_log = refusal_log
        self._max_payload_bytes = max_payload_bytes
        self._pool = pool
        self._generation = 0  # connections so far: an ack never crosses to a new one

    @property
    def manual_ack(self) -> bool:
        """With a pool, paho must leave the acks to us (after the handler, not before)."""
        return self._pool is not None

    def add(self, topic_filter: str, message: str, handler: Handler, qos: int) -> None:
        schemas.validator(message)  # fail fast on a name the spec does not have
        match_filter = topic_filter
        if topic_filter.startswith("$share/"):
            match_filter = topic_filter.split("/", 2)[2]
        self.routes.append(Route(match_filter, topic_filter, message, handler, qos))

    def subscribe_all(self, client: mqtt.Client) -> set[int]:
        """On a new connection: every route subscribed; the SUBACK ids to wait for."""
        self._generation += 1
        pending: set[int] = set()
        for route in self.routes:
            _rc, mid = client.subscribe(route.subscribe_as, qos=route.qos)
            if mid is not None:
                pending.add(mid)
        return pending

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """paho's on_message (network thread)."""
        topic = message.topic
        route = next(
            (r for r in self.routes if mqtt.topic_matches_sub(r.filter, topic)),
            None,
        )
        if route is None:
            self.rejects.add("unrouted")
            self._ack(client, message, self._generation)
            return
        if self._pool is not None:
            self._pool.submit(self.handle, route, message, client, self._generation)
            return
        self.handle(route, message)

    def _ack(
        self, client: mqtt.Client | None, message: mqtt.MQTTMessage, generation: int | None
    ) -> None:
        """Manual ack, on the connection the message came on (a later one, with the session
        kept, redelivers it)."""
        if self._pool is not None and client is not None and generation == self._generation:
            client.ack(message.mid, message.qos)

    def handle(
        self,
        route: Route,
        message: mqtt.MQTTMessage,
        client: mqtt.Client | None = None,
        generation: int | None = None,
    ) -> None:
        """Validate, hand to the route's handler, count a refusal; then the manual ack."""
        topic = message.topic
        try:
            payload = schemas.parse(route.message, message.payload, self._max_payload_bytes)
            props = getattr(message, "properties", None)
            inbound = Inbound(
                topic=topic,
                payload=payload,
                correlation_data=getattr(props, "CorrelationData", None),
                response_topic=getattr(props, "ResponseTopic", None),
                retain=bool(message.retain),
                expires_in_s=getattr(props, "MessageExpiryInterval", None),
            )
            route.handler(inbound)
        except PayloadRejected as exc:
            self.rejects.add(exc.reason)
            self.refusal_log.refused(route.message, topic, exc.reason, exc.detail)
        except Exception:
            self.rejects.add("handler_error")
            log.exception("handler for %s failed", topic)
        finally:
            self._ack(client, message, generation)
