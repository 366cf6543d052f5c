"""`blinkpay-host`: the reference payment host's command line.

  keys DIR                     make the backend signing key (+ public key for terminals)
                               and the PIN key, 0600, never overwriting
  serve                        run the host on the broker until SIGTERM / Ctrl-C
  enrol TOKEN (--images ... | --template FILE)
                               a customer: template, account, PIN (from stdin), delta
  account TOKEN OP             suspend | revoke | reactivate | delete, as a delta
  device DEVICE_ID PUBKEY      remember a terminal's signing key (tx signatures checked)
  snapshot                     publish the whole shard (terminals that lag catch up)
  console                      serve the operator's web console (docs/console.md)
  operator add NAME --role R   a console operator (admin | operator | viewer; password: stdin)

Every command takes --config host.toml (see backend/config.py); commands that publish
connect with their own client id, so they run beside a serving host on the same database.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.config import HostConfig, load_host_config
from backend.host import PaymentHost
from backend.shards import STATUS_OPS
from device.crypto.signing import load_public_key, private_pem, public_pem, write_private_file
from device.errors import BlinkpayError
from device.logs import setup_logging

log = logging.getLogger("blinkpay.host")

CONNECT_WAIT_S = 10.0


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="host TOML file")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blinkpay-host", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    keys = sub.add_parser("keys", help="make the signing and PIN keys")
    keys.add_argument("dir", type=Path)

    serve = sub.add_parser("serve", help="run the host until stopped")
    _add_config(serve)

    enrol = sub.add_parser("enrol", help="enrol a customer and publish the delta")
    _add_config(enrol)
    enrol.add_argument("token", help="the customer's pseudonymous account token")
    source = enrol.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, nargs="+", help="photos of the customer")
    source.add_argument("--template", type=Path, help="JSON printed by `blinkpay enroll`")
    enrol.add_argument(
        "--terminal-config",
        type=Path,
        default=None,
        help="the terminal's TOML (its vision models make the template from --images)",
    )
    enrol.add_argument("--shard", default=None, help="shard id (default: mqtt.shard_id)")
    enrol.add_argument("--balance", type=int, default=None, help="minor units")
    enrol.add_argument("--daily-limit", type=int, default=10_000)
    enrol.add_argument("--offline-allowance", type=int, default=1_000)
    enrol.add_argument(
        "--pin-stdin", action="store_true", help="read the PIN from the first line of stdin"
    )

    account = sub.add_parser("account", help="change a customer's status, as a delta")
    _add_config(account)
    account.add_argument("token")
    account.add_argument("op", choices=[*STATUS_OPS, "delete"])

    device = sub.add_parser("device", help="register a terminal's signing public key")
    _add_config(device)
    device.add_argument("device_id")
    device.add_argument("public_key", type=Path, help="PEM or raw Ed25519 public key file")

    snapshot = sub.add_parser("snapshot", help="publish the whole shard")
    _add_config(snapshot)
    snapshot.add_argument("--shard", default=None)

    from backend.console.cli import add_commands

    add_commands(sub, _add_config)
    return parser


def make_keys(folder: Path) -> dict[str, str]:
    """signing.pem (host only), signing.pub.pem (every terminal), pin.key (host and
    terminals: the AES key of the PIN blocks)."""
    signing = Ed25519PrivateKey.generate()
    paths = {
        "signing_key_file": folder / "signing.pem",
        "public_key_file": folder / "signing.pub.pem",
        "pin_key_file": folder / "pin.key",
    }
    for path in paths.values():
        if path.exists():
            raise BlinkpayError(f"{path} already exists; refusing to overwrite a key")
    write_private_file(paths["signing_key_file"], private_pem(signing))
    write_private_file(paths["pin_key_file"], os.urandom(16).hex().encode())
    paths["public_key_file"].write_bytes(public_pem(signing.public_key()))
    return {name: str(path) for name, path in paths.items()}


def _client_config(config: HostConfig) -> HostConfig:
    """A one-shot command's identity: its own client id (a serving host stays connected)
    and no session kept on the broker after it leaves."""
    mqtt = config.mqtt.model_copy(update={"session_expiry_s": 0})
    host_id = f"{config.host_id[:40]}-cli-{os.getpid()}"
    return config.model_copy(update={"host_id": host_id, "mqtt": mqtt})


def _connected_host(config: HostConfig) -> PaymentHost:
    host = PaymentHost(_client_config(config), serve=False)
    try:
        host.start(CONNECT_WAIT_S)
    except BaseException:
        host.link.stop()
        host.db.close()
        raise
    return host


def _template(args: argparse.Namespace) -> tuple[np.ndarray, str | None]:
    if args.template is not None:
        try:
            data = json.loads(args.template.read_text(encoding="utf-8"))
            vector = np.frombuffer(base64.b64decode(data["vector_b64"]), dtype="<f4")
            return vector, data.get("embedder_version")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BlinkpayError(f"{args.template}: not a template file ({exc})") from None
    # The terminal's own models make the template, so its embedder version is the shard's.
    from device.config import load_terminal_config
    from device.vision.pipeline import FacePipeline
    from device.vision.templates import template_from_files

    terminal = load_terminal_config(args.terminal_config)
    pipeline = FacePipeline.from_config(terminal.vision)
    # only the vector is kept; the photos never reach the database
    template, _ = template_from_files(pipeline, args.images)
    return template.vector, template.embedder_version


def _read_pin() -> str:
    pin = sys.stdin.readline().strip()
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise BlinkpayError("the PIN must be 4 to 12 digits")
    return pin


def _enrol(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    vector, embedder_version = _template(args)
    pin = _read_pin() if args.pin_stdin else None
    host = _connected_host(config)
    try:
        delta = host.enrol(
            args.token,
            vector,
            shard_id=args.shard or config.mqtt.shard_id,
            balance=args.balance,
            daily_limit=args.daily_limit,
            offline_allowance=args.offline_allowance,
            pin=pin,
            embedder_version=embedder_version,
        )
        published = host.link.flush(CONNECT_WAIT_S)
    finally:
        host.stop()
    return {
        "token": args.token,
        "shard_id": delta["shard_id"],
        "seq": delta["seq"],
        "published": published,
    }


def _account(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    host = _connected_host(config)
    try:
        delta = host.change(args.token, args.op)
        published = host.link.flush(CONNECT_WAIT_S)
    finally:
        host.stop()
    return {"token": args.token, "op": args.op, "seq": delta["seq"], "published": published}


def _device(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    try:
        key = load_public_key(args.public_key)
    except (OSError, ValueError) as exc:
        raise BlinkpayError(f"{args.public_key}: {exc}") from None
    host = PaymentHost(config, serve=False)  # no broker needed: the database only
    try:
        host.register_device(args.device_id, key)
    finally:
        host.db.close()
    return {"device_id": args.device_id, "registered": True}


def _snapshot(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    host = _connected_host(config)
    try:
        version = host.publish_snapshot(args.shard or config.mqtt.shard_id)
        published = host.link.flush(CONNECT_WAIT_S)
    finally:
        host.stop()
    return {
        "shard_id": args.shard or config.mqtt.shard_id,
        "version": version,
        "published": published and version > 0,
    }


def serve(config: HostConfig, stop: threading.Event) -> int:
    host = PaymentHost(config).start(wait_s=None)  # reconnects in the background
    log.info("host %s serving on %s", config.host_id, config.mqtt.url)
    try:
        stop.wait()
    finally:
        host.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging("INFO", "text")
    try:
        if args.command == "keys":
            print(json.dumps(make_keys(args.dir), indent=2))
            return 0
        config = load_host_config(args.config)
        if args.command == "serve":
            stop = threading.Event()

            def on_signal(signum: int, frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            return serve(config, stop)
        if args.command in ("console", "operator"):
            from backend.console.cli import run as run_console

            outcome = run_console(config, args)
            if isinstance(outcome, int):
                return outcome
            print(json.dumps(outcome, indent=2, sort_keys=True))
            return 0
        run = {"enrol": _enrol, "account": _account, "device": _device, "snapshot": _snapshot}
        result = run[args.command](config, args)
    except BlinkpayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0 if result.get("published", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
