"""One-time enrolment tokens: how a freshly flashed terminal proves, once, that the operator
sent it, and registers the Ed25519 key it made itself (docs/operations.md, "First boot").

`blinkpay-host device add ID --boot-dir DIR` issues a token for one device id and the
shard the operator chose; only its sha256 is stored (256 random bits need no slow hash:
nothing to guess). The terminal's signed `register` request carries the token, its
Ed25519 key and its X25519 key; the host checks the token (this device, not used, not
expired), burns it and stores both keys with the token's shard (the operator's choice,
never the terminal's claim) in the same transaction, and answers signed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from backend.db import HostDb
from backend.store import Conn
from device.crypto.signing import public_pem, verify_document
from device.crypto.template_box import box_public_pem

DEFAULT_TTL_S = 7 * 86_400.0

# Why a RegisterResponse refuses (docs/asyncapi.yaml); the terminal says what to do.
REASONS = (
    "unknown_token", "token_used", "token_expired", "wrong_device", "bad_signature", "bad_key"
)  # fmt: skip


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    db: HostDb,
    device_id: str,
    shard_id: str,
    ttl_s: float = DEFAULT_TTL_S,
    now: float | None = None,
) -> str:
    """A new token for `device_id` in `shard_id`; its earlier unused tokens stop working
    (one card live)."""
    token = secrets.token_urlsafe(32)
    issued = time.time() if now is None else now
    with db.transaction() as conn:
        conn.execute(
            "DELETE FROM enrolment_tokens WHERE device_id = ? AND used_at IS NULL", (device_id,)
        )
        conn.execute(
            "INSERT INTO enrolment_tokens VALUES (?, ?, ?, ?, ?, NULL)",
            (token_hash(token), device_id, shard_id, issued, issued + ttl_s),
        )
        # The terminal is known from now on (device list shows it without a key).
        conn.execute(
            "INSERT INTO devices (device_id) VALUES (?) ON CONFLICT(device_id) DO NOTHING",
            (device_id,),
        )
    return token


def _public_key(pem: str, kind: type[Any]) -> Any:
    """The PEM key if it is of `kind` (Ed25519 or X25519), else None."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return key if isinstance(key, kind) else None


def _token_row(conn: Conn, device_id: str, token: str, now: float) -> tuple[str | None, str]:
    """(refusal reason or None, the token's shard)."""
    row = conn.execute(
        "SELECT device_id, expires_at, used_at, shard_id FROM enrolment_tokens"
        " WHERE token_hash = ? FOR UPDATE",
        (token_hash(token),),
    ).fetchone()
    if row is None:
        return "unknown_token", ""
    if row[0] != device_id:
        return "wrong_device", ""
    if row[2] is not None:
        return "token_used", ""
    if now >= row[1]:
        return "token_expired", ""
    return None, row[3]


def redeem(db: HostDb, request: dict[str, Any], now: float | None = None) -> str:
    """Check a RegisterRequest; on success burn its token and store its key. Returns
    "ok" or a refusal reason (REASONS)."""
    now = time.time() if now is None else now
    key = _public_key(request["public_key"], Ed25519PublicKey)
    box = _public_key(request["box_public_key"], X25519PublicKey)
    if key is None or box is None:
        return "bad_key"
    if not verify_document(request, key):  # proof that the terminal holds the private key
        return "bad_signature"
    device_id, token = request["device_id"], request["token"]
    with db.transaction() as conn:
        reason, shard_id = _token_row(conn, device_id, token, now)
        if reason is not None:
            return reason
        conn.execute(
            "UPDATE enrolment_tokens SET used_at = ? WHERE token_hash = ?",
            (now, token_hash(token)),
        )
        # As `device add ID PUBKEY --x25519 FILE --shard S` stores them (PaymentHost).
        conn.execute(
            "INSERT INTO devices (device_id, public_key_pem, box_key_pem, home_shard)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET"
            " public_key_pem = excluded.public_key_pem, box_key_pem = excluded.box_key_pem,"
            " home_shard = excluded.home_shard",
            (device_id, public_pem(key).decode(), box_public_pem(box).decode(), shard_id),
        )
    return "ok"
