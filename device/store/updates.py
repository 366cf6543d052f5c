"""Parsing and validating shard updates (snapshots and deltas) before they touch the database.

The MQTT layer checks signatures and decodes JSON into exactly these dicts:

snapshot = {"shard_id", "version", "embedder_version", "dim", "migration"?,
            "records": [{"token", "vector_b64", "account": {...}}]}
delta    = {"shard_id", "seq", "embedder_version", "dim", "migration"?,
            "ops": [{"op": "add"|"update", "token", "vector_b64", "account"}
                    | {"op": "suspend"|"revoke"|"reactivate"|"delete", "token"}
                    | {"op": "account", "token", "account"}]}
account  = {"status": "active"|"suspended"|"revoked", "daily_limit", "offline_allowance"}
migration = {"embedder_version", "dim", "host_key"}: the embedder the shard migrates to

vector_b64 is base64 of little-endian float32[dim], L2-normalised.
Everything here is pure: a bad update raises Refusal with a reason code and a detail.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

# Reason codes of a refused update (counted, readable for telemetry).
WRONG_SHARD = "wrong_shard"
WRONG_EMBEDDER_VERSION = "wrong_embedder_version"
WRONG_DIM = "wrong_dim"
NON_FINITE_VECTOR = "non_finite_vector"
NON_NORMALISED_VECTOR = "non_normalised_vector"
MALFORMED = "malformed"
UNKNOWN_TOKEN = "unknown_token"
TOKEN_EXISTS = "token_exists"
REFUSAL_REASONS = (
    WRONG_SHARD,
    WRONG_EMBEDDER_VERSION,
    WRONG_DIM,
    NON_FINITE_VECTOR,
    NON_NORMALISED_VECTOR,
    MALFORMED,
    UNKNOWN_TOKEN,
    TOKEN_EXISTS,
)

NORM_TOLERANCE = 1e-3
MAX_DIM = 4096
STATUSES = ("active", "suspended", "revoked")
VECTOR_OPS = ("add", "update")
STATUS_OPS = {"suspend": "suspended", "revoke": "revoked", "reactivate": "active"}
OP_NAMES = (*VECTOR_OPS, *STATUS_OPS, "delete", "account")
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_SHARD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_INT = 2**62

OpKind = Literal["add", "update", "suspend", "revoke", "reactivate", "delete", "account"]


class Refusal(Exception):
    def __init__(self, reason: str, detail: str, offered: tuple[str, int] | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.offered = offered  # wrong_embedder_version: the (embedder, dim) of the update


@dataclass(frozen=True)
class AccountSettings:
    """An account's settings as a shard snapshot or delta carries them (add / update ops)."""

    status: str
    daily_limit: int
    offline_allowance: int


@dataclass(frozen=True)
class Op:
    kind: OpKind
    token: str
    row: int | None = None  # row of the update's vector matrix, for add/update
    account: AccountSettings | None = None


@dataclass(frozen=True)
class Migration:
    """The embedder the shard is migrating to, and the host key new templates are sealed
    to (docs/matching.md, "Changing the embedder")."""

    embedder_version: str
    dim: int
    host_key: str  # base64 of the host's raw X25519 public key


@dataclass(frozen=True)
class Header:
    shard_id: str
    number: int  # snapshot version or delta seq
    embedder_version: str
    dim: int
    migration: Migration | None = None


@dataclass(frozen=True)
class ParsedSnapshot:
    header: Header
    tokens: list[str]
    vectors: np.ndarray  # float32 (n, dim), row i belongs to tokens[i]
    accounts: list[AccountSettings]


@dataclass(frozen=True)
class ParsedDelta:
    header: Header
    ops: list[Op]
    vectors: np.ndarray  # float32 (number of add/update ops, dim)


def _int(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < _MAX_INT:
        raise Refusal(MALFORMED, f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Refusal(MALFORMED, f"{what} must be an object")
    return value


def _keys(item: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = set(item) - allowed
    if extra:
        raise Refusal(MALFORMED, f"{what}: unknown field(s) {sorted(map(str, extra))}")


def _header(update: Any, number_key: str, expected: Header | None) -> Header:
    update = _mapping(update, "update")
    shard_id = update.get("shard_id")
    if not isinstance(shard_id, str) or not _SHARD.match(shard_id):
        raise Refusal(MALFORMED, f"shard_id must be a short identifier, got {shard_id!r}")
    embedder = update.get("embedder_version")
    if not isinstance(embedder, str) or not 0 < len(embedder) <= 128:
        raise Refusal(MALFORMED, f"embedder_version must be a string, got {embedder!r}")
    header = Header(
        shard_id,
        _int(update.get(number_key), number_key),
        embedder,
        _int(update.get("dim"), "dim", minimum=1),
        _migration(update.get("migration"), embedder),
    )
    if header.dim > MAX_DIM:
        raise Refusal(WRONG_DIM, f"dim {header.dim} is larger than {MAX_DIM}")
    if expected is not None:
        if expected.embedder_version != embedder:
            raise Refusal(
                WRONG_EMBEDDER_VERSION,
                f"update is for embedder {embedder!r}, this device runs "
                f"{expected.embedder_version!r}",
                offered=(embedder, header.dim),
            )
        if expected.dim != header.dim:
            raise Refusal(WRONG_DIM, f"update has dim {header.dim}, device expects {expected.dim}")
    return header


def _migration(value: Any, current: str) -> Migration | None:
    if value is None:
        return None
    item = _mapping(value, "migration")
    _keys(item, {"embedder_version", "dim", "host_key"}, "migration")
    version, host_key = item.get("embedder_version"), item.get("host_key")
    if not isinstance(version, str) or not 0 < len(version) <= 128 or version == current:
        raise Refusal(
            MALFORMED, f"migration.embedder_version must be another embedder, got {version!r}"
        )
    dim = _int(item.get("dim"), "migration.dim", minimum=1)
    if dim > MAX_DIM:
        raise Refusal(WRONG_DIM, f"migration.dim {dim} is larger than {MAX_DIM}")
    try:
        raw = base64.b64decode(str(host_key), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise Refusal(MALFORMED, "migration.host_key must be a base64 32-byte X25519 key")
    return Migration(version, dim, str(host_key))


def _token(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise Refusal(MALFORMED, f"{where}: token must be an opaque identifier, got {value!r}")
    return value


def _account(value: Any, where: str) -> AccountSettings:
    item = _mapping(value, f"{where}.account")
    _keys(item, {"status", "daily_limit", "offline_allowance"}, f"{where}.account")
    status = item.get("status")
    if status not in STATUSES:
        raise Refusal(MALFORMED, f"{where}.account.status must be one of {STATUSES}")
    return AccountSettings(
        status,
        _int(item.get("daily_limit"), f"{where}.account.daily_limit"),
        _int(item.get("offline_allowance"), f"{where}.account.offline_allowance"),
    )


def _vectors(encoded: Sequence[Any], dim: int, where: Sequence[str]) -> np.ndarray:
    """Decode base64 float32 vectors into one matrix; refuse wrong size, NaN/inf, bad norm."""
    size = 4 * dim
    raw = bytearray()
    for text, place in zip(encoded, where, strict=True):
        if not isinstance(text, str):
            raise Refusal(MALFORMED, f"{place}: vector_b64 must be a base64 string")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(MALFORMED, f"{place}: vector_b64 is not valid base64") from None
        if len(data) != size:
            raise Refusal(
                WRONG_DIM, f"{place}: vector has {len(data) / 4:g} values, expected {dim}"
            )
        raw += data
    matrix = np.frombuffer(bytes(raw), dtype="<f4").reshape(len(encoded), dim)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        raise Refusal(NON_FINITE_VECTOR, f"{where[int(np.argmin(finite))]}: vector has NaN/inf")
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        bad = int(np.argmax(off))
        raise Refusal(
            NON_NORMALISED_VECTOR, f"{where[bad]}: vector norm {norms[bad]:.6f}, expected 1"
        )
    return matrix.astype(np.float32, copy=True)


def parse_snapshot(snapshot: Any, expected: Header | None) -> ParsedSnapshot:
    """expected carries the device's embedder version and dim (number and shard ignored)."""
    header = _header(snapshot, "version", expected)
    _keys(
        snapshot,
        {"shard_id", "version", "embedder_version", "dim", "migration", "records"},
        "snapshot",
    )
    records = snapshot.get("records")
    if not isinstance(records, list):
        raise Refusal(MALFORMED, "snapshot.records must be a list")
    tokens: list[str] = []
    accounts: list[AccountSettings] = []
    encoded: list[Any] = []
    for i, record in enumerate(records):
        where = f"records[{i}]"
        item = _mapping(record, where)
        _keys(item, {"token", "vector_b64", "account"}, where)
        tokens.append(_token(item.get("token"), where))
        accounts.append(_account(item.get("account"), where))
        encoded.append(item.get("vector_b64"))
    if len(set(tokens)) != len(tokens):
        raise Refusal(MALFORMED, "snapshot lists a token more than once")
    places = [f"records[{i}]" for i in range(len(records))]
    return ParsedSnapshot(header, tokens, _vectors(encoded, header.dim, places), accounts)


_OP_FIELDS = {
    **{name: {"op", "token", "vector_b64", "account"} for name in VECTOR_OPS},
    **{name: {"op", "token"} for name in (*STATUS_OPS, "delete")},
    "account": {"op", "token", "account"},
}


def parse_delta(delta: Any, expected: Header | None) -> ParsedDelta:
    header = _header(delta, "seq", expected)
    _keys(delta, {"shard_id", "seq", "embedder_version", "dim", "migration", "ops"}, "delta")
    raw_ops = delta.get("ops")
    if not isinstance(raw_ops, list) or not raw_ops:
        raise Refusal(MALFORMED, "delta.ops must be a non-empty list")
    ops: list[Op] = []
    encoded: list[Any] = []
    places: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_ops):
        where = f"ops[{i}]"
        item = _mapping(raw, where)
        kind = item.get("op")
        if kind not in OP_NAMES:
            raise Refusal(MALFORMED, f"{where}.op must be one of {OP_NAMES}, got {kind!r}")
        _keys(item, _OP_FIELDS[kind], where)
        token = _token(item.get("token"), where)
        # One op per token per delta keeps the outcome independent of op order.
        if token in seen:
            raise Refusal(MALFORMED, f"{where}: token {token!r} appears twice in the delta")
        seen.add(token)
        if kind in VECTOR_OPS:
            ops.append(Op(kind, token, len(encoded), _account(item.get("account"), where)))
            encoded.append(item.get("vector_b64"))
            places.append(where)
        elif kind == "account":
            ops.append(Op(kind, token, None, _account(item.get("account"), where)))
        else:
            ops.append(Op(kind, token))
    return ParsedDelta(header, ops, _vectors(encoded, header.dim, places))


def encode_vector(vector: np.ndarray) -> str:
    """The vector_b64 form of a template: base64 of little-endian float32."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
