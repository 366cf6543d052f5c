"""The reference payment host as the demo and the gate bench run it: its keys in a
throw-away directory, the host on the demo's private loopback broker, and that broker set
up as on a site (passwords, the terminal kept to its own topics)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

from device.crypto.signing import private_pem, public_pem, write_private_file
from device.net.config import MqttConfig
from device.net.local_broker import LocalBroker

SHARD_ID = "demo"
HOST_ID = "demo-host"


def host_keys(host_dir: Path) -> bytes:
    """The reference host's signing key and the PIN key it shares with the terminal (made
    here, in the throw-away host's directory); returns the PIN key."""
    import secrets

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    host_key = Ed25519PrivateKey.generate()
    write_private_file(host_dir / "signing.pem", private_pem(host_key))
    pin_key = secrets.token_bytes(32)
    write_private_file(host_dir / "pin.key", pin_key.hex().encode())
    (host_dir / "backend.pub").write_bytes(public_pem(host_key.public_key()))
    return pin_key


def reference_host(host_dir: Path, mqtt: MqttConfig, embedder_version: str, dim: int) -> Any:
    """The reference payment host on the keys host_keys made, on `mqtt` (not started)."""
    from backend.config import HostConfig
    from backend.host import PaymentHost

    return PaymentHost(
        HostConfig(
            host_id=HOST_ID,
            mqtt=mqtt,
            db_path=host_dir / "host.db",
            signing_key_file=host_dir / "signing.pem",
            pin_key_file=host_dir / "pin.key",
            embedder_version=embedder_version,
            dim=dim,
        )
    )


def site_broker(broker: LocalBroker, host_dir: Path, device_id: str, prefix: str) -> str:
    """What `blinkpay-host device add` and `broker-config` do on a site: a broker password
    for the host and one for the terminal (only their hashes in the host database), and
    mosquitto on the configuration written from it: no anonymous client, the terminal
    to its own topics and its shard's. Returns the terminal's password."""
    from backend.broker import Listener, issue_password, write_password, write_site_config
    from backend.db import HostDb

    db = HostDb(host_dir / "host.db")
    try:
        write_password(host_dir / "mqtt.password", issue_password(db, HOST_ID, "host", None))
        device_password = issue_password(db, device_id, "terminal", SHARD_ID)
        listener = Listener("127.0.0.1", broker.port)
        # a private broker: it runs as whoever runs the demo, in the demo's own folder
        me = pwd.getpwuid(os.geteuid()).pw_name
        write_site_config(db, prefix, broker.workdir, listener, "mosquitto", user=me)
    finally:
        db.close()
    broker.configure(broker.workdir / "mosquitto.conf").start()
    return device_password
