"""A paho-mqtt client for one MqttLink connection: the protocol (MQTT 5, or 3.1.1 after a
fallback), TLS / mutual TLS from [mqtt], the broker credential, every socket write left to
the network thread; and the MQTT 5 properties of a publish."""

from __future__ import annotations

import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device.net.config import MqttConfig

__all__ = ["new_client", "publish_properties"]


def _network_thread_writes(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """paho's write hook: nothing to do, the network thread's loop() writes the queue."""


def new_client(
    config: MqttConfig,
    client_id: str,
    protocol: str,
    *,
    tls: bool,
    manual_ack: bool,
    credential: tuple[str, str] | None,
) -> mqtt.Client:
    """A client with no callbacks yet: the link sets its own."""
    v5 = protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        # MQTT 3.1.1 has no expiry: a session of none is a clean one
        clean_session=None if v5 else config.session_expiry_s == 0,
        manual_ack=manual_ack,
    )
    if tls:
        client.tls_set(
            ca_certs=str(config.ca_file) if config.ca_file else None,
            certfile=str(config.cert_file) if config.cert_file else None,
            keyfile=str(config.key_file) if config.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    if credential is not None:
        client.username_pw_set(*credential)
    # Only the network thread touches the socket. Without a write hook, paho writes a
    # publish from the caller's thread while the network thread reads: on a TLS socket
    # two threads in one OpenSSL connection corrupt it ("Unspecified error" disconnects
    # under load). With the hook, publish() only queues and wakes the loop's select().
    client.on_socket_register_write = _network_thread_writes
    return client


def publish_properties(
    response_topic: str | None, correlation_data: bytes | None, expiry_s: int | None
) -> Properties | None:
    """MQTT 5 PUBLISH properties; None when there are none to send."""
    if not (response_topic or correlation_data or expiry_s):
        return None
    properties = Properties(PacketTypes.PUBLISH)
    if response_topic:
        properties.ResponseTopic = response_topic
    if correlation_data:
        properties.CorrelationData = correlation_data
    if expiry_s:
        properties.MessageExpiryInterval = expiry_s
    return properties
