"""The site's broker: one credential per terminal, and the mosquitto configuration that lets
only terminals in, each to its own topics and its shard's (docs/broker.md).

`blinkpay-host device add` issues a terminal's password (the host keeps only a
mosquitto-compatible hash of it, like `mosquitto_passwd` writes) and `blinkpay-host
broker-config DIR` writes from the host database:

    mosquitto.conf   listener, TLS when given, `allow_anonymous false`, the two files below
    passwords        `user:$7$...` lines (PBKDF2-SHA512, mosquitto's password_file format)
    acl              `pattern` lines: every user to its own `dev/<user name>/...` topics, in
                     the direction the contract gives them; per terminal its shard's topics;
                     the host user the whole prefix (shared subscriptions included)

With `[broker] dir` set in host.toml, `device add` rewrites `passwords` and `acl` there
itself; mosquitto reads them again on SIGHUP (`systemctl reload mosquitto`).
"""

from __future__ import annotations

import base64
import contextlib
import grp
import hashlib
import hmac
import os
import pwd
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.db import HostDb
from device.crypto.signing import write_private_file
from device.errors import BlinkpayError
from device.net.schemas import check_id
from device.net.telemetry import HA_SENSORS

# mosquitto_passwd's default for $7$ (PBKDF2-SHA512). The passwords are 256 random bits,
# so the iteration count is not what protects them; it only has to be what mosquitto reads.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

# What a terminal says and hears on its own topics (docs/asyncapi.yaml, channels).
TERMINAL_WRITES = (
    "status",
    "telemetry",
    "events",
    "tx",
    "auth/req",
    "config/state",
    "shard/req",
    "shard/ack",
    "register/req",
    "cmd/+/result",
    "retemplate",
)
TERMINAL_READS = ("tx/ack", "auth/resp", "config/set", "register/resp", "cmd/+")
# What a dashboard (Home Assistant, Grafana's MQTT source) reads, and nothing else.
MONITOR_READS = ("status", "telemetry", "events")


class BrokerSite(BaseModel):
    """host.toml [broker]: where the site's mosquitto reads its password and ACL files."""

    model_config = ConfigDict(extra="forbid")

    # A folder `broker-config` wrote: `device add` keeps its passwords and acl current.
    dir: Path | None = None
    # The group mosquitto runs as: the password and ACL files are made readable by it.
    group: str = Field(default="mosquitto", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """`$7$iterations$salt$hash`, base64 as mosquitto_passwd writes it."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    encoded = (base64.b64encode(part).decode("ascii") for part in (salt, digest))
    return f"$7${PBKDF2_ITERATIONS}${'$'.join(encoded)}"


def verify_hash(password: str, stored: str) -> bool:
    """Whether `password` matches a `$7$` hash (tests, and a host checking its own file)."""
    try:
        _, kind, rounds, salt, digest = stored.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode("utf-8"), base64.b64decode(salt), int(rounds)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def new_password() -> str:
    """256 random bits, URL-safe text (no character a config or shell would mangle)."""
    return secrets.token_urlsafe(32)


def issue_password(
    db: HostDb, username: str, role: str, shard_id: str | None, password: str | None = None
) -> str:
    """A new password for `username` (replacing any earlier one), or `password` when given
    (the host's own, from its file); only its hash is kept."""
    check_id(username, "broker user")
    if shard_id is not None:
        check_id(shard_id, "shard id")
    password = new_password() if password is None else password
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO broker_users (username, role, shard_id, password_hash, issued_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET role = excluded.role,"
            " shard_id = excluded.shard_id, password_hash = excluded.password_hash,"
            " issued_at = excluded.issued_at",
            (username, role, shard_id, mosquitto_hash(password), time.time()),
        )
    return password


def set_shard(db: HostDb, username: str, shard_id: str) -> bool:
    """Move a terminal's credential to another shard; False when it has none yet."""
    with db.transaction() as conn:
        cursor = conn.execute(
            "UPDATE broker_users SET shard_id = ? WHERE username = ? AND role = 'terminal'",
            (shard_id, username),
        )
    return cursor.rowcount > 0


def broker_users(db: HostDb) -> list[dict[str, Any]]:
    """Every credential (hashes only)."""
    return db.query(
        "SELECT username, role, shard_id, password_hash FROM broker_users ORDER BY username"
    )


def has_credential(db: HostDb, username: str) -> bool:
    return any(user["username"] == username for user in broker_users(db))


def write_password(path: Path, password: str) -> None:
    """A credential file: the password on one line, 0600."""
    try:
        write_private_file(path, password.encode("ascii") + b"\n", overwrite=True)
    except OSError as exc:
        raise BlinkpayError(f"{path}: cannot write the broker password ({exc.strerror})") from None


# -- the files mosquitto reads ------------------------------------------------------------


def passwords_text(users: list[dict[str, Any]]) -> str:
    return "".join(f"{user['username']}:{user['password_hash']}\n" for user in users)


def acl_text(prefix: str, users: list[dict[str, Any]]) -> str:
    """`pattern` lines for every user's own device topics (a terminal's user name is its
    device id, mosquitto puts it in for %u), then each user's own lines."""
    lines = [
        "# written by `blinkpay-host broker-config` (docs/broker.md); do not edit by hand:",
        "# `device add` and `broker-config` write it again from the host database.",
        "# Every user: its own device topics only, in the contract's direction.",
    ]
    lines += [f"pattern write {prefix}/dev/%u/{tail}" for tail in TERMINAL_WRITES]
    lines += [f"pattern read {prefix}/dev/%u/{tail}" for tail in TERMINAL_READS]
    for user in users:
        name = user["username"]
        lines += ["", f"user {name}"]
        if user["role"] == "host":
            # every terminal's topics, the shards', shared subscriptions ($share/...)
            lines.append(f"topic readwrite {prefix}/#")
            continue
        if user["role"] == "monitor":
            lines += [f"topic read {prefix}/dev/+/{tail}" for tail in MONITOR_READS]
            lines.append("topic read homeassistant/#")
            continue
        if user["shard_id"]:
            lines.append(f"topic read {prefix}/shard/{user['shard_id']}/#")
        # Home Assistant discovery (mqtt.homeassistant_discovery): its own sensors only
        lines += [f"topic write homeassistant/sensor/{name}_{key}/config" for key, *_ in HA_SENSORS]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Listener:
    """Where mosquitto listens, and its TLS files (server certificate; `cafile` also
    verifies client certificates when `require_certificate`)."""

    host: str
    port: int
    certfile: Path | None = None
    keyfile: Path | None = None
    cafile: Path | None = None
    require_certificate: bool = False


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (an IPv6 host in brackets) -> (host, port); BlinkpayError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BlinkpayError(f"--listen {text!r}: give HOST:PORT, e.g. 0.0.0.0:8883")
    return host, int(port)


def mosquitto_conf(
    out: Path, listener: Listener, persistence: bool = True, user: str | None = None
) -> str:
    lines = [
        "# The site broker for blinkpay: written by `blinkpay-host broker-config`",
        "# (docs/broker.md). Only users of `passwords` get in (a terminal's user is its",
        "# device id), each to the topics `acl` gives it.",
        *([f"user {user}"] if user else []),
        "per_listener_settings false",
        "allow_anonymous false",
        "# small packets (a request, an answer, a PUBACK) go at once, not after a delayed ACK",
        "set_tcp_nodelay true",
        f"password_file {out / 'passwords'}",
        f"acl_file {out / 'acl'}",
        f"listener {listener.port} {listener.host}",
    ]
    if listener.certfile is not None:
        lines += [f"certfile {listener.certfile}", f"keyfile {listener.keyfile}"]
        if listener.cafile is not None:
            lines.append(f"cafile {listener.cafile}")
        if listener.require_certificate:
            # mutual TLS: the certificate's CN is the user name the ACL applies to
            lines += ["require_certificate true", "use_identity_as_username true"]
    if persistence:
        lines += ["persistence true", f"persistence_location {out / 'data'}/"]
    lines.append(f"log_dest file {out / 'mosquitto.log'}")
    return "\n".join(lines) + "\n"


def _shared_with_broker(path: Path, group: str) -> None:
    """0640 and, run as root, the broker's group: mosquitto drops root before reading."""
    os.chmod(path, 0o640)
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError, OSError):
            os.chown(path, 0, grp.getgrnam(group).gr_gid)


def write_access_files(db: HostDb, prefix: str, out: Path, group: str) -> list[str]:
    """`passwords` and `acl` in `out`, replaced atomically; the names written."""
    users = broker_users(db)
    for name, text in (("passwords", passwords_text(users)), ("acl", acl_text(prefix, users))):
        tmp = out / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        _shared_with_broker(tmp, group)
        os.replace(tmp, out / name)
    return ["acl", "passwords"]


def write_site_config(
    db: HostDb,
    prefix: str,
    out: Path,
    listener: Listener,
    group: str,
    persistence: bool = True,
    user: str | None = None,
) -> list[str]:
    """The whole folder: mosquitto.conf, passwords, acl (and data/ for persistence).
    `user`: the account mosquitto switches to when started as root (default: its own
    `mosquitto`); a private broker (the demo's) stays with whoever started it."""
    for given in (listener.certfile, listener.keyfile, listener.cafile):
        if given is not None and not given.is_file():
            raise BlinkpayError(f"{given}: no such file")
    if (listener.certfile is None) != (listener.keyfile is None):
        raise BlinkpayError("--certfile and --keyfile go together (the broker's TLS)")
    if listener.require_certificate and (listener.cafile is None or listener.certfile is None):
        raise BlinkpayError("--require-certificate needs --certfile, --keyfile and --cafile")
    try:
        out.mkdir(parents=True, exist_ok=True)
        os.chmod(out, 0o755)  # mosquitto (its own user) reads in here
        written = write_access_files(db, prefix, out, group)
        conf = out / "mosquitto.conf"
        conf.write_text(mosquitto_conf(out, listener, persistence, user), encoding="utf-8")
        os.chmod(conf, 0o644)
        if persistence:
            data = out / "data"
            data.mkdir(exist_ok=True)
            os.chmod(data, 0o700)
            if os.geteuid() == 0:
                with contextlib.suppress(KeyError, OSError):
                    os.chown(data, _broker_uid(), grp.getgrnam(group).gr_gid)
    except OSError as exc:
        raise BlinkpayError(f"{out}: cannot write the broker's files ({exc.strerror})") from None
    return sorted([*written, "mosquitto.conf"])


def _broker_uid() -> int:
    return pwd.getpwnam("mosquitto").pw_uid
