"""The reference payment host as the demo and the gate bench run it: its keys in a
throw-away directory, and the host on the demo's private loopback broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from device.crypto.signing import private_pem, public_pem, write_private_file
from device.net.config import MqttConfig

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
