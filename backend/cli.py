"""`blinkpay-host`: the reference payment host's command line.

  keys DIR                     make the host's signing key, its public key (for terminals)
                               and the PIN key, 0600, never overwriting
  serve                        run the host on the broker until SIGTERM / Ctrl-C
  enrol TOKEN (--images ... | --template FILE)
                               a customer: template, account, PIN (from stdin), delta
  account set TOKEN OP         suspend | revoke | reactivate | delete, as a delta
  account list                 every account (no PINs, no templates)
  device add DEVICE_ID PUBKEY [--x25519 FILE] [--shard ID]
                               remember a terminal's signing key (tx signatures checked)
                               and X25519 key (the shard's templates are sealed to it)
  device add DEVICE_ID --boot-dir DIR [--bundle FILE] [--shard ID]
                               a new terminal: a one-time enrolment token and the files for
                               its card's boot partition; it registers its own keys on first boot
  device list                  every terminal the host knows
  broker-config DIR            the site's mosquitto: listener, TLS, per-terminal passwords
                               and ACLs (docs/broker.md)
  snapshot                     publish the whole shard (terminals that lag catch up)
  ledger export DEVICE_ID --out FILE
                               the host's signed copy of a terminal's synced rows, for
                               `blinkpay db recover` on a terminal whose ledger was lost
  console                      serve the operator's web console (docs/console.md)
  operator add NAME --role R   a console operator (admin | operator | viewer; password: stdin)
  operator list | role NAME ROLE | disable NAME | enable NAME | reset-password NAME |
           logout NAME         manage operators (audited; sessions end on a change)

Every command but `keys` takes --config host.toml (docs/host.md); commands that publish
connect with their own client id, so they run beside a serving host on the same database.
With `[mqtt] enabled = false` they change the database only, and terminals catch up from
the next snapshot.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend import pin_tries
from backend.cli_common import connected_host, finish, needs_mqtt, open_db
from backend.cli_devices import device_add, device_list
from backend.cli_parser import parser as _parser
from backend.config import HostConfig, load_host_config
from backend.duplicates import refuse_duplicate
from backend.host import PaymentHost
from backend.store import database_errors
from device.crypto.signing import private_pem, public_pem, write_private_file
from device.crypto.template_box import generate_box_key
from device.errors import BlinkpayError, os_error_line
from device.logs import setup_logging
from device.signals import event_setter, stop_on_signals

log = logging.getLogger("blinkpay.host")


def make_keys(folder: Path) -> dict[str, str]:
    """signing.pem (host only), signing.pub.pem (every terminal), pin.key (host and
    terminals: the AES key of the PIN blocks), box.pem (host only: the X25519 key terminals
    seal new-embedder templates to during a migration)."""
    signing = Ed25519PrivateKey.generate()
    paths = {
        "signing_key_file": folder / "signing.pem",
        "public_key_file": folder / "signing.pub.pem",
        "pin_key_file": folder / "pin.key",
        "box_key_file": folder / "box.pem",
    }
    if folder.exists() and not folder.is_dir():
        raise BlinkpayError(f"{folder} is a file; give a folder for the keys")
    for path in paths.values():
        if path.exists():
            raise BlinkpayError(f"{path} already exists; refusing to overwrite a key")
    try:
        write_private_file(paths["signing_key_file"], private_pem(signing))
        write_private_file(paths["pin_key_file"], os.urandom(16).hex().encode())
        generate_box_key(paths["box_key_file"])
        paths["public_key_file"].write_bytes(public_pem(signing.public_key()))
    except OSError as exc:
        raise BlinkpayError(f"{folder}: cannot write the keys ({exc.strerror})") from None
    return {name: str(path) for name, path in paths.items()}


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
    from device.vision.enrol_photos import template_from_photos
    from device.vision.pipeline import FacePipeline

    terminal = load_terminal_config(args.terminal_config)
    pipeline = FacePipeline.from_config(terminal.vision)
    # only the vector is kept; the photos never reach the database
    template, _ = template_from_photos(pipeline, args.images)
    return template.vector, template.embedder_version


def _read_pin() -> str:
    pin = sys.stdin.readline().strip()
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise BlinkpayError("the PIN must be 4 to 12 digits")
    return pin


def _enrol(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    vector, embedder_version = _template(args)
    pin = _read_pin() if args.pin_stdin else None
    host = connected_host(config)
    try:
        # as the console does; a template file that names no embedder is the host default's
        refuse_duplicate(host.db, vector, args.token, embedder_version or config.embedder_version)
        delta = host.enrol(
            args.token,
            vector,
            shard_id=args.shard or config.mqtt.shard_id,
            balance=args.balance,
            daily_limit=args.daily_limit,
            offline_allowance=args.offline_allowance,
            pin=pin,
            embedder_version=embedder_version,
            publish=config.mqtt.enabled,
        )
    finally:
        outcome = finish(host)
    return {"token": args.token, "shard_id": delta["shard_id"], "seq": delta["seq"], **outcome}


def _account_set(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    host = connected_host(config)
    try:
        delta = host.change(args.token, args.op, publish=config.mqtt.enabled)
    finally:
        outcome = finish(host)
    return {"token": args.token, "op": args.op, "seq": delta["seq"], **outcome}


def _account_list(config: HostConfig, args: argparse.Namespace) -> list[dict[str, Any]]:
    db = open_db(config)
    try:
        return db.accounts(args.shard)
    finally:
        db.close()


def _account_unlock(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    """The operator's unlock of a PIN locked by wrong tries: counted, recorded, audited."""
    from backend.console.store import ConsoleStore

    db = open_db(config)
    try:
        outcome = pin_tries.unlock(db, args.token, args.operator)
        if outcome["unlocked"]:
            ConsoleStore(db).audit(
                args.operator,
                "account.pin_unlock",
                args.token,
                "cli",
                failures=outcome["failures"],
                was_locked=outcome["was_locked"],
            )
        else:
            raise BlinkpayError(f"no account {args.token}")
        return outcome
    finally:
        db.close()


def _snapshot(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    needs_mqtt(config, "snapshot")
    host = connected_host(config)
    try:
        version = host.publish_snapshot(args.shard or config.mqtt.shard_id)
    finally:
        outcome = finish(host)
    return {
        "shard_id": args.shard or config.mqtt.shard_id,
        "version": version,
        "published": outcome["published"] and version > 0,
    }


def serve(config: HostConfig, stop: threading.Event) -> int:
    host = PaymentHost(config).start(wait_s=None)  # reconnects in the background
    log.info("host %s serving on %s", config.host_id, config.mqtt.url)
    try:
        stop.wait()
    finally:
        host.stop()
    return 0


def _ledger_export(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    from backend.ledger_export import ledger_export
    from device.crypto.signing import load_signing_key

    db = open_db(config)
    try:
        export = ledger_export(db, args.device_id, load_signing_key(config.signing_key_file))
    finally:
        db.close()
    args.out.write_text(json.dumps(export, sort_keys=True), encoding="utf-8")
    return {"device_id": args.device_id, "rows": len(export["body"]["rows"]), "out": str(args.out)}


def _broker_config(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    from backend.broker_cli import broker_config

    return broker_config(config, args)


def _shard(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    from backend.cli_shard import run

    return run(config, args)


COMMANDS = {
    ("enrol", None): _enrol,
    ("account", "set"): _account_set,
    ("account", "list"): _account_list,
    ("account", "unlock"): _account_unlock,
    ("device", "add"): device_add,
    ("device", "list"): device_list,
    ("snapshot", None): _snapshot,
    ("ledger", "export"): _ledger_export,
    ("broker-config", None): _broker_config,
    **{("shard", action): _shard for action in ("status", "migrate", "cancel", "switch")},
}


def _serve(config: HostConfig) -> int:
    needs_mqtt(config, "serve")
    stop = threading.Event()
    with stop_on_signals(event_setter(stop)):
        return serve(config, stop)


def _run(args: argparse.Namespace) -> int:
    if args.command == "keys":
        print(json.dumps(make_keys(args.dir), indent=2))
        return 0
    if args.command == "bench":
        from backend.bench_load import report_text, run_load

        report = run_load(args)
        print(json.dumps(report, sort_keys=True) if args.json else report_text(report))
        return 0
    config = load_host_config(args.config)
    if args.command == "serve":
        return _serve(config)
    if args.command in ("console", "operator"):
        from backend.console.cli import run as run_console

        outcome = run_console(config, args)
        if isinstance(outcome, int):
            return outcome
        print(json.dumps(outcome, indent=2, sort_keys=True))
        return 0
    try:
        result = COMMANDS[(args.command, getattr(args, "action", None))](config, args)
    except database_errors() as exc:  # a db_path that is a directory, not SQLite; a server down
        raise BlinkpayError(f"host database {config.database}: {exc}") from None
    print(json.dumps(result, indent=2, sort_keys=True))
    if isinstance(result, list) or result.get("mqtt") == "disabled":
        return 0
    return 0 if result.get("published", True) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "enroll":  # the other spelling of `enrol`
        args.command = "enrol"
    setup_logging("INFO", "text")
    name = " ".join(filter(None, ("blinkpay-host", args.command, getattr(args, "action", None))))
    try:
        return _run(args)
    except BlinkpayError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path the command was given or configured with
        print(f"{name}: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
