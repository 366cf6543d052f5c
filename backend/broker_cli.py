"""`blinkpay-host broker-config DIR` and the broker credential `device add` gives a
terminal (backend/broker.py has the files and hashes; docs/broker.md the whole story)."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path
from typing import Any

from backend import broker
from backend.config import HostConfig
from backend.db import HostDb
from device.errors import BlinkpayError
from device.net.config import broker_password
from device.net.schemas import check_id


def add_parser(sub: argparse._SubParsersAction, add_config: Any) -> None:
    description = (
        "write the site's mosquitto configuration into DIR: listener, TLS, per-terminal "
        "passwords and ACLs (anonymous clients refused, each terminal to its own topics)"
    )
    parser = sub.add_parser("broker-config", help=description, description=description)
    add_config(parser)
    parser.add_argument("dir", type=Path, help="the folder for mosquitto.conf, passwords, acl")
    from backend.cli_parser import listen_address

    parser.add_argument(
        "--listen",
        type=listen_address,
        default=None,
        metavar="HOST:PORT",
        help="where mosquitto listens (default: the host and port of mqtt.url)",
    )
    parser.add_argument("--certfile", type=Path, help="the broker's TLS certificate (mqtts)")
    parser.add_argument("--keyfile", type=Path, help="the key of --certfile")
    parser.add_argument(
        "--cafile",
        type=Path,
        help="the site CA: verifies client certificates (with --require-certificate)",
    )
    parser.add_argument(
        "--require-certificate",
        action="store_true",
        help="mutual TLS: a client needs a certificate from --cafile; its CN is its user name",
    )
    parser.add_argument(
        "--monitor",
        action="append",
        default=[],
        metavar="USER",
        help="a read-only user for a dashboard (status, telemetry, events, Home Assistant "
        "discovery); its password goes to DIR/USER.password when it has none (repeatable)",
    )
    parser.add_argument(
        "--no-persistence",
        action="store_true",
        help="keep no session state on disk (a throw-away broker)",
    )


def host_credential(config: HostConfig, db: HostDb, out: Path) -> dict[str, Any]:
    """The host's own broker user: [mqtt] username (default host_id) with the password in
    [mqtt] password_file (made there when missing), else in DIR/host.password."""
    username = config.mqtt.username or config.host_id
    path = config.mqtt.password_file or out / "host.password"
    if path.exists():
        password = _host_password(path)
        broker.issue_password(db, username, "host", None, password)
        return {"host_user": username, "host_password_file": str(path), "host_password": "kept"}
    password = broker.new_password()
    broker.write_password(path, password)
    if os.geteuid() == 0:  # root writes it; the host's own user (its folder's owner) reads it
        folder = path.parent.stat()
        os.chown(path, folder.st_uid, folder.st_gid)
    broker.issue_password(db, username, "host", None, password)
    result = {"host_user": username, "host_password_file": str(path), "host_password": "new"}
    if config.mqtt.password_file is None:
        result["next"] = (
            f'set in host.toml [mqtt]: username = "{username}", password_file = "{path}"'
        )
    return result


def _host_password(path: Path) -> str:
    """The host's password file, checked like a key; root (running broker-config for
    mosquitto's folder) may read it when it belongs to the host's own user."""
    if os.geteuid() == 0 and path.is_file() and path.stat().st_uid != 0:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise BlinkpayError(f"{path}: readable by others; run `chmod 600 {path}`")
        password = path.read_text(encoding="utf-8").strip()
        if not password or any(c.isspace() for c in password):
            raise BlinkpayError(f"{path}: give the broker password on one line")
        return password
    return broker_password(path)


def broker_config(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    if args.listen is not None:
        host, port = broker.parse_listen(args.listen)
    else:
        scheme, where = config.mqtt.url.split("://", 1)
        if not where.rpartition(":")[2].isdigit():
            where += ":8883" if scheme == "mqtts" else ":1883"
        host, port = broker.parse_listen(where)
    listener = broker.Listener(
        host, port, args.certfile, args.keyfile, args.cafile, args.require_certificate
    )
    db = HostDb(config.db_path)
    try:
        host = host_credential(config, db, args.dir)
        monitors = {name: monitor_credential(db, name, args.dir) for name in args.monitor}
        written = broker.write_site_config(
            db,
            config.mqtt.prefix,
            args.dir,
            listener,
            config.broker.group,
            persistence=not args.no_persistence,
        )
        users = broker.broker_users(db)
    finally:
        db.close()
    return {
        "dir": str(args.dir),
        "written": written,
        "listener": f"{host_text(listener.host)}:{listener.port}",
        "tls": listener.certfile is not None,
        "terminals": sorted(u["username"] for u in users if u["role"] == "terminal"),
        "monitors": monitors,
        "run": f"mosquitto -c {args.dir / 'mosquitto.conf'}",
        **host,
    }


def monitor_credential(db: HostDb, name: str, out: Path) -> str:
    """A dashboard's read-only user: a password in DIR/NAME.password the first time."""
    try:
        check_id(name, "monitor user")
    except ValueError as exc:
        raise BlinkpayError(str(exc)) from None
    known = {u["username"]: u["role"] for u in broker.broker_users(db)}
    if name in known and known[name] != "monitor":
        raise BlinkpayError(f"--monitor {name}: that user is a {known[name]}, not a dashboard")
    if name in known:
        return "kept"
    path = out / f"{name}.password"
    password = broker.new_password()
    out.mkdir(parents=True, exist_ok=True)
    broker.write_password(path, password)
    broker.issue_password(db, name, "monitor", None, password)
    return str(path)


def host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def refresh(config: HostConfig, db: HostDb) -> str | None:
    """After a credential change: rewrite [broker] dir's passwords and acl, if set."""
    if config.broker.dir is None:
        return None
    if not (config.broker.dir / "mosquitto.conf").is_file():
        raise BlinkpayError(
            f"[broker] dir {config.broker.dir} has no mosquitto.conf: run "
            "`blinkpay-host broker-config DIR` first"
        )
    broker.write_access_files(db, config.mqtt.prefix, config.broker.dir, config.broker.group)
    return "reload the broker: systemctl reload mosquitto (or kill -HUP its pid)"


def terminal_credential(
    config: HostConfig, db: HostDb, device_id: str, shard_id: str, out: Path | None, renew: bool
) -> dict[str, Any]:
    """A terminal's password, written to `out` (0600), unless it has one and not `renew`
    (its shard is updated either way)."""
    if broker.has_credential(db, device_id) and not renew:
        broker.set_shard(db, device_id, shard_id)
        result: dict[str, Any] = {"broker_user": device_id, "broker_password": "kept"}
    else:
        if out is None:
            raise BlinkpayError(
                "give --mqtt-password-out FILE: the terminal's new broker password goes there"
            )
        # the file first: a password that cannot be handed over is never put in force
        password = broker.new_password()
        broker.write_password(out, password)
        broker.issue_password(db, device_id, "terminal", shard_id, password)
        result = {"broker_user": device_id, "broker_password": "new", "password_file": str(out)}
    reload = refresh(config, db)
    if reload:
        result["broker"] = reload
    return result
