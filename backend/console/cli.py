"""`blinkpay-host console` and `blinkpay-host operator add`, added to backend/cli.py's parser."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from backend.config import HostConfig
from backend.console.auth import ROLES, Auth, AuthError
from backend.console.store import ConsoleStore
from backend.db import HostDb
from device.errors import BlinkpayError


def _sub(sub: Any, name: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=description, description=description
    )
    return parser


def add_commands(sub: Any, add_config: Any) -> None:
    console = _sub(sub, "console", "serve the operator's web console (docs/console.md)")
    add_config(console)
    from backend.cli_parser import listen_address

    console.add_argument(
        "--listen",
        type=listen_address,
        default="127.0.0.1:8080",
        help="HOST:PORT to serve on (default %(default)s)",
    )
    console.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="IP",
        help="a reverse proxy whose X-Forwarded-For/-Proto headers are believed (repeat "
        "for several); without it the headers are ignored and the peer address counts",
    )
    console.add_argument(
        "--terminal-config",
        type=Path,
        default=None,
        help="the terminal's TOML: its vision models check enrolment photos",
    )
    console.add_argument(
        "--serve",
        action="store_true",
        help="also run the payment host (authorizations, ledger, snapshots) in this process",
    )
    operator = _sub(sub, "operator", "manage the console's operators")
    operator_sub = operator.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _sub(operator_sub, "add", "create an operator (password from stdin)")
    add_config(add)
    add.add_argument("name", help="2-32 of a-z, 0-9, _ . - (a letter first)")
    add.add_argument("--role", choices=ROLES, required=True, help="what the operator may do")
    listing = _sub(operator_sub, "list", "every operator: name, role, enabled or not")
    add_config(listing)
    for action, description in CHANGES.items():
        change = _sub(operator_sub, action, description)
        add_config(change)
        change.add_argument("name", help="the operator")
        if action == "role":
            change.add_argument("role", choices=ROLES, help="the new role")


CHANGES = {
    "role": "promote or demote an operator (their sessions end)",
    "disable": "an operator can no longer log in; their sessions end now",
    "enable": "let a disabled operator log in again",
    "reset-password": "a new password for an operator (from stdin); their sessions end",
    "logout": "end every session of an operator",
}


def change_operator(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    """One change from CHANGES, audited as done from the command line."""
    db = HostDb(config.db_path)
    try:
        store = ConsoleStore(db)
        auth = Auth(store)
        result: dict[str, Any] = {"operator": args.name, "action": args.action}
        if args.action == "role":
            auth.set_role(args.name, args.role)
            result["role"] = args.role
        elif args.action in ("disable", "enable"):
            auth.set_disabled(args.name, args.action == "disable")
        elif args.action == "reset-password":
            auth.reset_password(args.name, _password())
        else:
            result["sessions_ended"] = auth.end_sessions(args.name)
        detail = {k: v for k, v in result.items() if k not in ("operator", "action")}
        store.audit(None, f"operator_{args.action.replace('-', '_')}", args.name, "cli", **detail)
        return result
    except AuthError as exc:
        raise BlinkpayError(str(exc)) from None
    finally:
        db.close()


def list_operators(config: HostConfig) -> list[dict[str, Any]]:
    db = HostDb(config.db_path)
    try:
        rows = Auth(ConsoleStore(db)).operators()
    finally:
        db.close()
    return [{**row, "disabled": bool(row["disabled"])} for row in rows]


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise BlinkpayError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def add_operator(config: HostConfig, name: str, role: str, password: str) -> dict[str, Any]:
    db = HostDb(config.database)
    try:
        Auth(ConsoleStore(db)).add_operator(name, role, password)
        ConsoleStore(db).audit(None, "operator_add", name, "cli", role=role)
    except AuthError as exc:
        raise BlinkpayError(str(exc)) from None
    finally:
        db.close()
    return {"operator": name, "role": role}


def run(config: HostConfig, args: argparse.Namespace) -> dict[str, Any] | list[Any] | int:
    if args.command == "operator":
        if args.action == "add":
            return add_operator(config, args.name, args.role, _password())
        if args.action == "list":
            return list_operators(config)
        return change_operator(config, args)
    from backend.console.app import serve_console

    return serve_console(
        config,
        args.terminal_config,
        args.listen,
        also_serve=args.serve,
        trusted_proxies=args.trusted_proxy,
    )
