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
    console.add_argument(
        "--listen", default="127.0.0.1:8080", help="HOST:PORT to serve on (default %(default)s)"
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


def run(config: HostConfig, args: argparse.Namespace) -> dict[str, Any] | int:
    if args.command == "operator":
        return add_operator(config, args.name, args.role, _password())
    from backend.console.app import serve_console

    return serve_console(config, args.terminal_config, args.listen, also_serve=args.serve)
