"""`blinkpay-host device add | list`: the terminals the host knows, their keys, their cards
and their broker credentials (docs/host.md, docs/broker.md)."""

from __future__ import annotations

import argparse
from typing import Any

from backend.cli_common import open_db
from backend.config import HostConfig
from backend.host import PaymentHost
from device.crypto.signing import load_public_key
from device.crypto.template_box import load_box_public_key
from device.errors import BlinkpayError, os_error_line


def device_list(config: HostConfig, args: argparse.Namespace) -> list[dict[str, Any]]:
    from backend.broker import broker_users

    db = open_db(config)
    try:
        users = {u["username"] for u in broker_users(db) if u["role"] == "terminal"}
        # broker_credential: `device add` issued it a broker password (docs/broker.md)
        return [{**row, "broker_credential": row["device_id"] in users} for row in db.devices()]
    finally:
        db.close()


def _device_boot(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    from backend.cards import write_card

    if args.x25519 is not None:
        raise BlinkpayError("--x25519 goes with PUBLIC_KEY: a card's terminal sends its own")
    if args.mqtt_password_out is not None:
        raise BlinkpayError("--mqtt-password-out goes with PUBLIC_KEY: a card carries its own")
    written = write_card(config, args.device_id, args.boot_dir, args.bundle, args.ttl, args.shard)
    return {"device_id": args.device_id, "boot_dir": str(args.boot_dir), "written": written}


def device_add(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    if (args.public_key is None) == (args.boot_dir is None):
        raise BlinkpayError("give the terminal's PUBLIC_KEY file, or --boot-dir DIR for a new card")
    if args.boot_dir is not None:
        return _device_boot(config, args)
    try:
        key = load_public_key(args.public_key)
        box = None if args.x25519 is None else args.x25519.read_bytes()
        if box is not None:
            load_box_public_key(box, str(args.x25519))
    except OSError as exc:
        raise BlinkpayError(os_error_line(exc)) from None
    except ValueError as exc:
        raise BlinkpayError(f"{args.public_key}: not an Ed25519 public key ({exc})") from None
    from backend.broker_cli import terminal_credential

    shard = args.shard or config.mqtt.shard_id
    out = args.mqtt_password_out or args.public_key.with_name(f"{args.device_id}.mqtt-password")
    host = PaymentHost(config, serve=False)  # no broker needed: the database only
    try:
        host.register_device(args.device_id, key, box, args.shard)
        credential = terminal_credential(
            config, host.db, args.device_id, shard, out, args.new_mqtt_password
        )
    finally:
        host.db.close()
    return {
        "device_id": args.device_id,
        "registered": True,
        "shard_id": shard,
        "templates_sealed_to_it": box is not None,
        **credential,
    }
