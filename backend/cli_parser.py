"""The `blinkpay-host` command line: every command and option, each with its help
(backend/cli.py carries them out)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from backend.shards import STATUS_OPS
from device.net.schemas import check_id


def device_id(text: str) -> str:
    """argparse type: a device id of the contract (docs/asyncapi.yaml, Id), else exit 2."""
    try:
        return check_id(text, "device id")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def listen_address(text: str) -> str:
    """argparse type: HOST:PORT with a port number in 1-65535 (an IPv6 host in brackets)."""
    from backend.broker import parse_listen
    from device.errors import BlinkpayError

    try:
        parse_listen(text)
    except BlinkpayError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HOST:PORT (a port number 1-65535, e.g. 127.0.0.1:8080)"
        ) from None
    return text


def shard_id(text: str) -> str:
    try:
        return check_id(text, "shard id")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="host TOML file (docs/host.md; relative paths in it are relative to its "
        "directory); default: built-in defaults, files in the current directory",
    )


def _command(
    sub: argparse._SubParsersAction,
    name: str,
    description: str,
    *,
    config: bool = True,
    aliases: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """A subcommand whose --help shows its one-line description."""
    parser = sub.add_parser(name, help=description, description=description, aliases=aliases)
    if config:
        _add_config(parser)
    return parser


def _enrol_parser(sub: argparse._SubParsersAction) -> None:
    enrol = _command(
        sub,
        "enrol",
        "enrol a customer (template, account, PIN), publish the delta",
        aliases=("enroll",),  # one name, `enrol`, as in `blinkpay enrol`; the other spelling too
    )
    enrol.add_argument("token", help="the customer's pseudonymous account token")
    source = enrol.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images", type=Path, nargs="+", help="photos of the customer, one face in each"
    )
    source.add_argument("--template", type=Path, help="JSON printed by `blinkpay enrol`")
    enrol.add_argument(
        "--terminal-config",
        type=Path,
        default=None,
        help="the terminal's TOML (its vision models make the template from --images)",
    )
    enrol.add_argument(
        "--shard", type=shard_id, default=None, help="shard id (default: mqtt.shard_id)"
    )
    enrol.add_argument(
        "--balance", type=int, default=None, help="starting balance in minor units (cents)"
    )
    enrol.add_argument(
        "--daily-limit", type=int, default=10_000, help="minor units per day (default 10000)"
    )
    enrol.add_argument(
        "--offline-allowance",
        type=int,
        default=1_000,
        help="minor units a terminal may approve offline (default 1000)",
    )
    enrol.add_argument(
        "--pin-stdin", action="store_true", help="read the PIN from the first line of stdin"
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blinkpay-host",
        description="`blinkpay-host`: the reference payment host's command line (docs/host.md).",
        epilog="Run `blinkpay-host COMMAND --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keys = _command(sub, "keys", "make the signing and PIN keys in DIR", config=False)
    keys.add_argument(
        "dir",
        type=Path,
        help="folder for signing.pem, signing.pub.pem, pin.key and box.pem (made 0700)",
    )
    _command(sub, "serve", "run the host on the broker until SIGTERM or Ctrl-C")
    _enrol_parser(sub)

    account = _command(sub, "account", "list accounts or change one's status", config=False)
    account_sub = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    change = _command(account_sub, "set", "change a customer's status and publish the delta")
    change.add_argument("token", help="the customer's account token")
    change.add_argument("op", choices=[*STATUS_OPS, "delete"], help="the change")
    listing = _command(account_sub, "list", "every account (token, status, limits; no PINs)")
    listing.add_argument("--shard", type=shard_id, default=None, help="only this shard")
    unlock = _command(
        account_sub, "unlock", "unlock a customer's PIN after too many wrong tries (audited)"
    )
    unlock.add_argument("token", help="the customer's account token")
    unlock.add_argument(
        "--operator",
        default=os.environ.get("USER") or "cli",
        help="who unlocks, for the audit log (default: $USER)",
    )

    ledger = _command(sub, "ledger", "the host's copy of a terminal's ledger", config=False)
    ledger_sub = ledger.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = _command(
        ledger_sub, "export", "a terminal's synced transactions, signed, for `blinkpay db recover`"
    )
    export.add_argument("device_id", type=device_id, help="the terminal's device.id")
    export.add_argument("--out", type=Path, required=True, help="the file to write (JSON)")

    device = _command(sub, "device", "register or list terminals", config=False)
    device_sub = device.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _command(
        device_sub, "add", "register a terminal's public keys, or write its first-boot card"
    )
    add.add_argument("device_id", type=device_id, help="the terminal's device.id")
    add.add_argument(
        "public_key",
        type=Path,
        nargs="?",
        help="PEM or raw Ed25519 public key file (printed by provision); or --boot-dir",
    )
    add.add_argument(
        "--boot-dir",
        type=Path,
        metavar="DIR",
        help="write the first-boot files (cloud-init user-data, blinkpay/...) into DIR: the "
        "mounted boot partition of a freshly flashed card, or a folder to copy onto it",
    )
    add.add_argument(
        "--bundle",
        type=Path,
        metavar="FILE",
        help="the signed offline bundle to put on the card (install.sh --make-bundle); "
        "without it, copy one to DIR/blinkpay/bundle.tar.gz yourself",
    )
    add.add_argument(
        "--ttl",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds the token is valid (default [boot] token_ttl_s, 7 days)",
    )
    add.add_argument(
        "--x25519",
        type=Path,
        default=None,
        help="the terminal's X25519 public key (PEM, printed by `blinkpay provision`): "
        "the shard's templates are sealed to it; without it the terminal gets none",
    )
    add.add_argument(
        "--shard", type=shard_id, default=None, help="its shard (default: mqtt.shard_id)"
    )
    add.add_argument(
        "--mqtt-password-out",
        type=Path,
        metavar="FILE",
        help="with PUBLIC_KEY: where its new broker password goes (0600; default "
        "DEVICE_ID.mqtt-password beside PUBLIC_KEY); give it to `blinkpay provision "
        "--mqtt-password` (docs/broker.md)",
    )
    add.add_argument(
        "--new-mqtt-password",
        action="store_true",
        help="issue a new broker password even if the terminal has one (the old one stops "
        "working at the broker's next reload)",
    )
    _command(device_sub, "list", "every terminal the host knows, with its last contact")

    snapshot = _command(sub, "snapshot", "publish the whole shard (lagging terminals catch up)")
    snapshot.add_argument(
        "--shard", type=shard_id, default=None, help="shard id (default: mqtt.shard_id)"
    )
    from backend.broker_cli import add_parser as add_broker_config

    add_broker_config(sub, _add_config)

    bench = _command(sub, "bench", "measure the host", config=False)
    bench_sub = bench.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = _command(
        bench_sub,
        "load",
        "simulated terminals against real mosquitto and `serve` workers (docs/scaling.md)",
        config=False,
    )
    from backend.bench_load import add_arguments

    add_arguments(load)

    from backend.cli_shard import add_parser as add_shard_parser
    from backend.console.cli import add_commands

    add_shard_parser(sub, _command)
    add_commands(sub, _add_config)
    return parser
