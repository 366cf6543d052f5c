"""How much one terminal flooding PIN blocks slows every other terminal's authorization
(issue 19: 20 requests of 8 PIN blocks each took every terminal from 0.05 s to 10.6 s).

A private mosquitto, the reference host (in process, serving), two registered terminals'
authorizers: `gate-a` asks for one ordinary authorization at a time and times the answer,
alone and then while `gate-flood` sends 20 signed requests of 8 PIN blocks each (160
scrypts). Run twice: with the host's default limits, and with the rate limits lifted
(`--no-rate-limits`) so only the fair queue stands between the flood and gate-a.

    python benchmarks/auth_flood.py [--no-rate-limits] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.cli import make_keys
from backend.config import HostConfig
from backend.host import PaymentHost
from device.core.events import AuthCandidate
from device.crypto.pinblock import encipher_pin_block, pan_for_token
from device.crypto.signing import load_public_key
from device.net.auth import Authorizer
from device.net.client import MqttLink
from device.net.config import MqttConfig
from device.net.local_broker import LocalBroker, mosquitto_binary
from device.net.topics import DeviceTopics

SHARD = "bench"


def _terminal(url: str, device_id: str, host: PaymentHost, backend: Path) -> tuple[Any, ...]:
    key = Ed25519PrivateKey.generate()
    host.register_device(device_id, key.public_key(), None, SHARD)
    mqtt = MqttConfig(url=url, shard_id=SHARD, auth_timeout_s=30.0)
    link = MqttLink(mqtt, device_id, signing_key=key)
    topics = DeviceTopics(mqtt.prefix, device_id)
    authorizer = Authorizer(link, topics, 30.0, load_public_key(backend))
    link.start()
    if not link.wait_connected(10):
        raise SystemExit(f"{device_id} could not connect")
    return link, topics, authorizer


def _timed(authorizer: Authorizer) -> float:
    started = time.monotonic()
    reply = authorizer.authorize(
        tx_id=str(uuid.uuid4()), amount=100, currency="EUR", candidates=[AuthCandidate("tok-a")]
    )
    if reply is None or not reply.approved:
        raise SystemExit(f"gate-a was not approved: {reply}")
    return time.monotonic() - started


def _settled_count(host: PaymentHost) -> int:
    """Flood requests the host decided, once it has stopped deciding them (2 s quiet)."""
    last, since, deadline = -1, time.monotonic(), time.monotonic() + 120
    while time.monotonic() < deadline:
        with host.db.lock:
            count = int(
                host.db.db.execute(
                    "SELECT COUNT(*) FROM authorizations WHERE device_id = 'gate-flood'"
                ).fetchone()[0]
            )
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since > 2.0:
            break
        time.sleep(0.2)
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="flood requests (8 PINs each)")
    parser.add_argument("--no-rate-limits", action="store_true", help="fair queue only")
    args = parser.parse_args()
    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("needs mosquitto (apt-get install -y mosquitto)")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        broker = LocalBroker(work / "broker", binary).start()
        make_keys(work / "host")
        limits: dict[str, Any] = {}
        if args.no_rate_limits:
            limits = {"auth_rate_per_s": 1e6, "auth_burst": 10**6, "pin_blocks_per_min": 1e9}
            limits["pin_block_burst"] = 10**6
        config = HostConfig(
            mqtt=MqttConfig(url=broker.url, shard_id=SHARD),
            db_path=work / "host" / "host.db",
            signing_key_file=work / "host" / "signing.pem",
            pin_key_file=work / "host" / "pin.key",
            **limits,
        )
        host = PaymentHost(config).start()
        pin_key = bytes.fromhex((work / "host" / "pin.key").read_text().strip())
        rng = np.random.default_rng(1)
        for n, token in enumerate(["tok-a", *(f"tok-f{i}" for i in range(8))]):
            vector = rng.standard_normal(config.dim).astype(np.float32)
            pin = None if n == 0 else "1234"
            host.enrol(token, vector, shard_id=SHARD, balance=10**9, pin=pin, publish=False)
        backend = work / "host" / "signing.pub.pem"
        gate_a = _terminal(broker.url, "gate-a", host, backend)
        flood_link, flood_topics, _ = _terminal(broker.url, "gate-flood", host, backend)
        try:
            alone = [_timed(gate_a[2]) for _ in range(5)]
            blocks = [
                {
                    "token": f"tok-f{i}",
                    "pin_block": encipher_pin_block(
                        pin_key, "9999", pan_for_token(f"tok-f{i}"), os.urandom(8)
                    ).hex(),
                }
                for i in range(8)
            ]
            for _ in range(args.requests):
                request = {
                    "v": 1,
                    "request_id": uuid.uuid4().hex,
                    "device_id": "gate-flood",
                    "tx_id": str(uuid.uuid4()),
                    "amount": 100,
                    "currency": "EUR",
                    "ts": time.time(),
                    "candidates": blocks,
                }
                flood_link.publish_signed(flood_topics.auth_req, request, qos=1)
            during = [_timed(gate_a[2]) for _ in range(5)]
            worked = _settled_count(host)
        finally:
            for link in (gate_a[0], flood_link):
                link.stop()
            host.stop()
            broker.stop()
    mode = "fair queue only (rate limits lifted)" if args.no_rate_limits else "default limits"
    print(f"{mode}: flood of {args.requests} requests x 8 PIN blocks")
    print(f"  gate-a alone:        median {statistics.median(alone):.3f} s, max {max(alone):.3f} s")
    print(
        f"  gate-a during flood: median {statistics.median(during):.3f} s, max {max(during):.3f} s"
    )
    print(f"  flood requests that reached the PIN check: {worked} of {args.requests}")


if __name__ == "__main__":
    main()
