"""What the host's one-shot commands share: a database that must exist, and a host
connected under a client id of its own (a serving host stays connected beside it)."""

from __future__ import annotations

import os
from typing import Any

from backend.config import HostConfig
from backend.db import HostDb
from backend.host import PaymentHost
from device.errors import BlinkpayError

CONNECT_WAIT_S = 10.0


def client_config(config: HostConfig) -> HostConfig:
    """A one-shot command's identity: its own client id (a serving host stays connected)
    and no session kept on the broker after it leaves."""
    mqtt = config.mqtt.model_copy(update={"session_expiry_s": 0})
    host_id = f"{config.host_id[:40]}-cli-{os.getpid()}"
    return config.model_copy(update={"host_id": host_id, "mqtt": mqtt})


def connected_host(config: HostConfig) -> PaymentHost:
    host = PaymentHost(client_config(config), serve=False)
    if not config.mqtt.enabled:  # the database only; terminals catch up from a snapshot
        return host
    try:
        host.start(CONNECT_WAIT_S)
    except BaseException:
        host.link.stop()
        host.db.close()
        raise
    return host


def finish(host: PaymentHost) -> dict[str, Any]:
    """Flush what was published and close; {"published": ...} or {"mqtt": "disabled"}."""
    if not host.config.mqtt.enabled:
        host.db.close()
        return {"published": False, "mqtt": "disabled"}
    try:
        return {"published": host.link.flush(CONNECT_WAIT_S)}
    finally:
        host.stop()


def needs_mqtt(config: HostConfig, command: str) -> None:
    if not config.mqtt.enabled:
        raise BlinkpayError(
            f"`{command}` needs the broker, and the config has [mqtt] enabled = false"
        )


def open_db(config: HostConfig) -> HostDb:
    """The host database for a listing: it must exist (a listing never creates one)."""
    if config.db_url is None and not config.db_path.is_file():
        raise BlinkpayError(
            f"no host database at {config.db_path} (db_path); enrol a customer or run "
            "`blinkpay-host serve` first, or pass --config"
        )
    return HostDb(config.database)
