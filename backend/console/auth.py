"""Operators, passwords, sessions, CSRF tokens and the login rate limit.

Passwords: scrypt (n=2**15) with a per-operator salt, compared in constant time. A session
is a random id in an HttpOnly, SameSite=Strict cookie; only its SHA-256 is stored, so a
copy of the database opens no session. Each session has its own CSRF token that every
form and every script request must echo."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from backend.console.i18n import N_
from backend.console.store import ConsoleStore
from device.errors import TranslatableError

ROLES = ("viewer", "operator", "admin")
ROLE_LIST = ", ".join(ROLES)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256


class AuthError(TranslatableError):
    """A refused login or operator change (an N_ message with its arguments), with the
    reason counted by the console."""


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    csrf: str = ""

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=2**15, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024
    )


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(
            N_("a password has {least} to {most} characters"),
            "weak_password",
            {"least": MIN_PASSWORD, "most": MAX_PASSWORD},
        )


class LoginLimiter:
    """At most `attempts` failed logins per name and per client in `window_s` seconds."""

    def __init__(self, attempts: int = 5, window_s: float = 300.0) -> None:
        self.attempts, self.window_s = attempts, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def blocked(self, keys: list[str], now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def failed(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class Auth:
    def __init__(self, store: ConsoleStore, *, idle_s: float = 1800.0, max_s: float = 43200.0):
        self.store = store
        self.idle_s, self.max_s = idle_s, max_s
        self.limiter = LoginLimiter()

    # -- operators ----------------------------------------------------------------------

    def add_operator(self, name: str, role: str, password: str) -> None:
        if not NAME_PATTERN.match(name):
            raise AuthError(N_("a name is 2-32 of a-z, 0-9, _ . - (a letter first)"), "bad_name")
        if role not in ROLES:
            raise AuthError(N_("the role is one of {roles}"), "bad_role", {"roles": ROLE_LIST})
        check_new_password(password)
        if self.store.one("SELECT name FROM operators WHERE name = ?", (name,)):
            raise AuthError(N_("operator {name} exists already"), "operator_exists", {"name": name})
        salt = os.urandom(16)
        self.store.execute(
            "INSERT INTO operators (name, role, pw_salt, pw_hash, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, role, salt, hash_password(password, salt), time.time()),
        )

    def _known(self, name: str) -> dict[str, object]:
        row = self.store.one("SELECT name, role, disabled FROM operators WHERE name = ?", (name,))
        if row is None:
            raise AuthError(N_("no operator {name}"), "unknown_operator", {"name": name})
        return row

    def _keeps_an_admin(self, name: str) -> None:
        """Refuse a change that would leave no enabled admin (nobody could undo it)."""
        others = self.store.one(
            "SELECT COUNT(*) AS n FROM operators WHERE role = 'admin' AND NOT disabled"
            " AND name != ?",
            (name,),
        )
        if not others or not others["n"]:
            raise AuthError(
                N_("{name} is the last enabled admin; make another first"),
                "last_admin",
                {"name": name},
            )

    def set_role(self, name: str, role: str) -> None:
        """Promote or demote; the operator's sessions end (the next page asks to log in)."""
        if role not in ROLES:
            raise AuthError(N_("the role is one of {roles}"), "bad_role", {"roles": ROLE_LIST})
        row = self._known(name)
        if row["role"] == "admin" and role != "admin" and not row["disabled"]:
            self._keeps_an_admin(name)
        self.store.execute("UPDATE operators SET role = ? WHERE name = ?", (role, name))
        self.end_sessions(name)

    def set_disabled(self, name: str, disabled: bool) -> None:
        """A disabled operator cannot log in, and every session of theirs ends now."""
        row = self._known(name)
        if disabled and row["role"] == "admin" and not row["disabled"]:
            self._keeps_an_admin(name)
        self.store.execute(
            "UPDATE operators SET disabled = ? WHERE name = ?", (1 if disabled else 0, name)
        )
        if disabled:
            self.end_sessions(name)

    def reset_password(self, name: str, password: str) -> None:
        """A new password (the old one stops working); every session of theirs ends."""
        self._known(name)
        check_new_password(password)
        salt = os.urandom(16)
        self.store.execute(
            "UPDATE operators SET pw_salt = ?, pw_hash = ? WHERE name = ?",
            (salt, hash_password(password, salt), name),
        )
        self.end_sessions(name)

    def end_sessions(self, name: str) -> int:
        """Every session of one operator ends (their open pages and streams too)."""
        self._known(name)
        with self.store.db.transaction() as conn:
            cursor = conn.execute("DELETE FROM console_sessions WHERE operator = ?", (name,))
            return cursor.rowcount

    def alive(self, session_id: str | None) -> bool:
        """Whether a session still stands, without counting as activity (a live stream
        must not keep an idle session open, and ends when the session ends)."""
        if not session_id:
            return False
        row = self.store.one(
            "SELECT s.created_at, s.last_used, o.disabled FROM console_sessions s"
            " JOIN operators o ON o.name = s.operator WHERE s.id_hash = ?",
            (_session_hash(session_id),),
        )
        now = time.time()
        return bool(
            row
            and not row["disabled"]
            and now - row["last_used"] <= self.idle_s
            and now - row["created_at"] <= self.max_s
        )

    def operators(self) -> list[dict[str, object]]:
        return self.store.query(
            "SELECT name, role, created_at, disabled FROM operators ORDER BY name"
        )

    # -- login and sessions -------------------------------------------------------------

    def login(self, name: str, password: str, client: str) -> str:
        """A new session id for the right password; AuthError otherwise (rate-limited)."""
        keys = [f"name:{name.lower()}", f"client:{client}"]
        if self.limiter.blocked(keys):
            raise AuthError(N_("too many failed logins; wait a few minutes"), "login_rate_limited")
        row = self.store.one(
            "SELECT role, pw_salt, pw_hash, disabled FROM operators WHERE name = ?", (name,)
        )
        # An unknown name costs the same scrypt as a known one (no timing oracle).
        salt = row["pw_salt"] if row else b"\0" * 16
        expected = row["pw_hash"] if row else b""
        ok = hmac.compare_digest(hash_password(password[:MAX_PASSWORD], salt), expected)
        if not ok or row is None or row["disabled"]:
            self.limiter.failed(keys)
            raise AuthError(N_("wrong name or password"), "wrong_login")
        self.limiter.clear(keys[0])
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        self.store.execute(
            "INSERT INTO console_sessions VALUES (?, ?, ?, ?, ?)",
            (_session_hash(session_id), name, secrets.token_urlsafe(24), now, now),
        )
        return session_id

    def session(self, session_id: str | None) -> Operator | str | None:
        """The operator of a live session, "expired" for an expired one, None for none."""
        if not session_id:
            return None
        key = _session_hash(session_id)
        row = self.store.one(
            "SELECT s.operator, s.csrf, s.created_at, s.last_used, o.role, o.disabled"
            " FROM console_sessions s JOIN operators o ON o.name = s.operator"
            " WHERE s.id_hash = ?",
            (key,),
        )
        if row is None:
            return None
        now = time.time()
        if (
            row["disabled"]
            or now - row["last_used"] > self.idle_s
            or (now - row["created_at"] > self.max_s)
        ):
            self.store.execute("DELETE FROM console_sessions WHERE id_hash = ?", (key,))
            return "expired"
        self.store.execute(
            "UPDATE console_sessions SET last_used = ? WHERE id_hash = ?", (now, key)
        )
        return Operator(row["operator"], row["role"], row["csrf"])

    def logout(self, session_id: str | None) -> None:
        if session_id:
            self.store.execute(
                "DELETE FROM console_sessions WHERE id_hash = ?", (_session_hash(session_id),)
            )

    def expire_all(self, name: str) -> None:
        """Tests and operators: end every session of one operator."""
        self.store.execute("UPDATE console_sessions SET last_used = 0 WHERE operator = ?", (name,))


def csrf_ok(operator: Operator, supplied: str | None) -> bool:
    return bool(supplied) and hmac.compare_digest(operator.csrf, str(supplied))
