"""One-time enrolment tokens at the host: random, stored hashed, for one device, single
use, expiring; a request must be signed by the key it registers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backend.db import HostDb
from backend.enrolment import issue_token, redeem, token_hash
from device.crypto.template_box import box_public_pem
from device.net import schemas
from device.net.register import register_request


@pytest.fixture
def db(host_db_url: str) -> HostDb:
    database = HostDb(host_db_url)
    yield database
    database.close()


def _request(device_id: str, token: str, key: Ed25519PrivateKey | None = None) -> dict:
    box = box_public_pem(X25519PrivateKey.generate()).decode()
    signer = key or Ed25519PrivateKey.generate()
    request = register_request(device_id, signer, box, token, uuid.uuid4().hex)
    schemas.check("RegisterRequest", request)  # what the terminal sends is in the contract
    return request


def _key_of(db: HostDb, device_id: str) -> str | None:
    rows = db.query("SELECT public_key_pem FROM devices WHERE device_id = ?", [device_id])
    return rows[0]["public_key_pem"]


def _box_and_shard(db: HostDb, device_id: str) -> tuple[str | None, str | None]:
    sql = "SELECT box_key_pem, home_shard FROM devices WHERE device_id = ?"
    return tuple(db.query(sql, [device_id])[0].values())


def test_a_token_registers_its_device_once(db: HostDb, tmp_path: Path) -> None:
    token = issue_token(db, "gate-1", "north")
    assert len(token) >= 40 and token != issue_token(db, "gate-2", "north")
    assert _key_of(db, "gate-1") is None  # known, not yet registered
    request = _request("gate-1", token)
    assert redeem(db, request) == "ok"
    assert _key_of(db, "gate-1") == request["public_key"]
    # templates are sealed to its X25519 key, for the shard the operator chose
    assert _box_and_shard(db, "gate-1") == (request["box_public_key"], "north")
    assert redeem(db, _request("gate-1", token)) == "token_used"  # a copied card
    assert _key_of(db, "gate-1") == request["public_key"]  # the first key stays
    stored = db.query("SELECT token_hash FROM enrolment_tokens")
    assert {"token_hash": token_hash(token)} in stored
    for stored in tmp_path.glob("host.db*"):  # the database and its WAL
        assert token.encode() not in stored.read_bytes()


def test_refusals(db: HostDb) -> None:
    token = issue_token(db, "gate-1", "north", ttl_s=600.0, now=time.time() - 601.0)
    assert redeem(db, _request("gate-1", token)) == "token_expired"
    token = issue_token(db, "gate-1", "north")
    assert redeem(db, _request("gate-2", token)) == "wrong_device"
    assert redeem(db, _request("gate-1", "x" * 43)) == "unknown_token"
    forged = _request("gate-1", token)
    forged["public_key"] = _request("gate-1", token)["public_key"]  # not the signer's key
    assert redeem(db, forged) == "bad_signature"
    assert redeem(db, {**forged, "public_key": "-----BEGIN PUBLIC KEY-----\nno\n"}) == "bad_key"
    swapped = _request("gate-1", token)  # an Ed25519 key where the X25519 key goes
    assert redeem(db, {**swapped, "box_public_key": swapped["public_key"]}) == "bad_key"
    assert redeem(db, _request("gate-1", token)) == "ok"  # none of those burnt it


def test_a_new_card_voids_the_unused_one(db: HostDb) -> None:
    lost = issue_token(db, "gate-1", "north")
    fresh = issue_token(db, "gate-1", "north")
    assert redeem(db, _request("gate-1", lost)) == "unknown_token"
    assert redeem(db, _request("gate-1", fresh)) == "ok"
