"""The host's tests reuse the MQTT area's fixtures (keys, terminals, mosquitto check)."""

from backend.store import Conn
from tests.net.conftest import _need_mosquitto, backend_keys  # noqa: F401


def register_terminals(conn: Conn, shard_id: str = "s1") -> None:
    """gate-1 and gate-2, registered for `shard_id` (as `blinkpay-host device add` does)."""
    for device_id in ("gate-1", "gate-2"):
        conn.execute(
            "INSERT INTO devices (device_id, public_key_pem, home_shard) VALUES (?, ?, ?)",
            (device_id, "-----BEGIN PUBLIC KEY-----", shard_id),
        )
