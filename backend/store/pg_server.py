"""A throw-away PostgreSQL server for the load bench and the tests: initdb + pg_ctl in a
temporary directory, on a free loopback port, stopped and removed after. PostgreSQL
refuses to run as root, so under root the server runs as the `postgres` user (Debian's
package makes it) through runuser."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from device.errors import BlinkpayError
from device.net.local_broker import free_port

SUPERUSER = "blinkpay"
START_TIMEOUT_S = 60


def pg_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version, reverse=True)
    return Path(versions[0]).parent if versions else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


class TempPostgres:
    """`with TempPostgres() as pg: pg.url` -- a server with a superuser and no password
    (trust on 127.0.0.1 only), for as long as the block runs."""

    def __init__(self, bin_dir: Path | None = None, *, durable: bool = True) -> None:
        """durable=False: no fsync (tests: a thrown-away server need not survive a power
        cut); the load bench keeps PostgreSQL's defaults."""
        self.durable = durable
        found = bin_dir or pg_bin_dir()
        if found is None:
            raise BlinkpayError("PostgreSQL server binaries not found (apt install postgresql)")
        self.bin_dir = found
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="blinkpay-pg-"))
        self.data = self.folder / "data"
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise BlinkpayError("as root, a `postgres` user runs the server") from None
            self._user = entry.pw_name
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._started = False

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S)

    def start(self) -> TempPostgres:
        done = self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
            "--no-locale", "--no-sync",
        )  # fmt: skip
        if done.returncode != 0:
            raise BlinkpayError(f"initdb failed: {done.stderr.strip()[-400:]}")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c max_connections=200"
            f" -c unix_socket_directories={self.folder} -c shared_buffers=128MB"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        done = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w",
            "-t", str(START_TIMEOUT_S), "-o", options, "start",
        )  # fmt: skip
        if done.returncode != 0:
            log = (self.folder / "server.log").read_text(errors="replace")[-600:]
            self.stop()
            raise BlinkpayError(f"pg_ctl start failed: {done.stderr.strip()} {log}")
        self._started = True
        return self

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while the server runs (first line of postmaster.pid)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def create_database(self, name: str) -> str:
        """A new empty database on this server; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, name: str) -> str:
        """A new empty schema in the default database (far cheaper than a database, for
        a test each); returns a URL whose connections use only it."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        if self._started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self._started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
