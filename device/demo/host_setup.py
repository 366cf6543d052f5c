"""The reference payment host as the gate bench runs it: its keys in a throw-away
directory, and the host on the bench's private (anonymous, loopback-only) broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from device.crypto.signing import private_pem, public_pem, write_private_file

SHARD_ID = "demo"


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


def reference_host(host_dir: Path, broker_url: str, embedder_version: str, dim: int) -> Any:
    """The reference payment host on the keys host_keys made (not started)."""
    from backend.config import HostConfig
    from backend.host import PaymentHost
    from device.net.config import MqttConfig

    return PaymentHost(
        HostConfig(
            host_id="demo-host",
            mqtt=MqttConfig(url=broker_url, shard_id=SHARD_ID),
            db_path=host_dir / "host.db",
            signing_key_file=host_dir / "signing.pem",
            pin_key_file=host_dir / "pin.key",
            embedder_version=embedder_version,
            dim=dim,
        )
    )
