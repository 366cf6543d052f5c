"""Why a broker gives no MQTT session: the name, the port, the TLS handshake, in turn.

`blinkpay selftest` asks when its session does not come up, so a field engineer reads
"unknown host name", "connection refused" or "certificate does not verify" instead of a
timeout: each says what to fix."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from urllib.parse import urlparse

from device.net.config import MqttConfig


def _tls_context(config: MqttConfig) -> ssl.SSLContext:
    """The context MqttLink connects with (device/net/client.py): the CA, the client pair."""
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if config.cert_file is not None:
        key = str(config.key_file) if config.key_file else None
        context.load_cert_chain(str(config.cert_file), key)
    return context


def diagnose(config: MqttConfig, timeout_s: float = 5.0) -> str:
    """One line: what stands between this terminal and an MQTT session with the broker."""
    url = urlparse(config.url or "")
    tls = url.scheme == "mqtts"
    host = url.hostname or "127.0.0.1"
    port = url.port or (8883 if tls else 1883)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"unknown host name {host!r} ({exc.strerror}): check mqtt.url and the DNS"
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        return (
            f"{host}:{port} refused the connection: no broker listens there (is it running, "
            "is the port in mqtt.url right?)"
        )
    except TimeoutError:
        return f"no answer from {host}:{port} in {timeout_s:.0f} s (a firewall, or the address)"
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc.strerror or exc}"
    with raw:
        if not tls:
            return f"{host}:{port} accepts connections but gave no MQTT session (see its log)"
        try:
            context = _tls_context(config)
        except (OSError, ssl.SSLError) as exc:
            return f"the TLS files cannot be used: {exc} (mqtt.ca_file, cert_file, key_file)"
        try:
            with context.wrap_socket(raw, server_hostname=host) as wrapped:
                wrapped.settimeout(timeout_s)
                # TLS 1.3: a refused client certificate shows on the first read
                wrapped.recv(1)
        except ssl.SSLCertVerificationError as exc:
            ca = Path(config.ca_file) if config.ca_file else "the system's CAs"
            return (
                f"the broker's certificate does not verify with {ca}: {exc.verify_message} "
                "(mqtt.ca_file must be the CA that signed the broker's certificate)"
            )
        except ssl.SSLError as exc:
            return (
                f"TLS with {host}:{port} failed: {exc.reason or exc} (a client certificate the "
                "broker does not accept? mqtt.cert_file, key_file)"
            )
        except TimeoutError:
            pass  # the handshake held and the broker waits for CONNECT: TLS is fine
        except OSError as exc:
            return f"TLS with {host}:{port} was cut: {exc} (the broker refused this client?)"
    return (
        f"{host}:{port} speaks TLS with these files, but gave no MQTT session (the broker's "
        "log says why: client id, ACL)"
    )
