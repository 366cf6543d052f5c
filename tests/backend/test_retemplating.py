"""The host's side of an embedder migration (backend/retemplating.py), without a broker:
a terminal's retemplate message is kept only when signed by the key registered for the
topic's device, bound to an approved transaction of that device naming that customer;
snapshots carry the active embedder's templates only; the switch moves the new ones in."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backend.accounts import Accounts
from backend.db import HostDb
from backend.retemplate_inbox import Refused, RetemplateInbox, host_key_b64
from backend.retemplating import Migrations
from backend.shards import ShardPublisher
from device.crypto.signing import sign_document
from device.errors import BlinkpayError
from device.net import schemas
from device.net.retemplate import retemplate_message
from device.store.updates import parse_snapshot

OLD, NEW = "dlib-resnet-v1-int8-1", "mobilefacenet-test-1"
SHARD = "station-a"


def _unit(seed: int, dim: int) -> np.ndarray:
    vec = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return vec / np.linalg.norm(vec)


class World:
    def __init__(self, folder: Path) -> None:
        self.db = HostDb(folder / "host.db")
        self.accounts = Accounts(self.db, bytes(16), "host-t")
        self.box = X25519PrivateKey.generate()
        self.shards = ShardPublisher(
            self.db,
            self.accounts,
            Ed25519PrivateKey.generate(),
            embedder_version=OLD,
            dim=128,
            chunk_bytes=4096,
            host_key_b64=host_key_b64(self.box),
        )
        self.migrations = Migrations(self.db, default_version=OLD, default_dim=128)
        self.inbox = RetemplateInbox(self.db, self.box, default_version=OLD, default_dim=128)
        self.keys: dict[str, Ed25519PrivateKey] = {}
        for token, seed in (("alice", 1), ("bob", 2)):
            account = {"status": "active", "daily_limit": 10_000, "offline_allowance": 500}
            self.shards.enrol(
                token, _unit(seed, 128), shard_id=SHARD, account=account, balance=10_000
            )

    def device(self, device_id: str) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO devices (device_id, public_key_pem, home_shard) VALUES (?, ?, ?)",
                (device_id, pem.decode(), SHARD),
            )
        self.keys[device_id] = key
        return key

    def payment(self, device_id: str, token: str, status: str = "approved") -> str:
        """A transaction the device's synced row recorded (status as signed)."""
        tx_id = str(uuid.uuid4())
        tx = {"id": tx_id, "device_id": device_id, "token": token, "amount": 100}
        tx["status"] = status
        if status == "approved":  # backed by the host's own online approval, as in the field
            assert self.accounts.authorize(device_id, tx_id, 100, [{"token": token}]).approved
        self.accounts.record_tx(device_id, tx, status)
        return tx_id

    def message(
        self, device_id: str, tx_id: str, token: str, *, signer: str | None = None, seed: int = 9
    ) -> dict[str, Any]:
        key = self.keys[signer or device_id]
        message = retemplate_message(
            device_id=device_id,
            shard_id=SHARD,
            tx_id=tx_id,
            token=token,
            vector=_unit(seed, 192),
            embedder_version=NEW,
            frames=5,
            host_key_b64=host_key_b64(self.box),
            sign=lambda document: sign_document(document, key),
        )
        schemas.check("Retemplate", message)
        return message

    def next_template(self, token: str) -> tuple[str, np.ndarray] | None:
        rows = self.db.query("SELECT source, vector FROM next_templates WHERE token = ?", [token])
        if not rows:
            return None
        return rows[0]["source"], np.frombuffer(rows[0]["vector"], "<f4")


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.device("gate-01")
    w.device("gate-02")
    w.migrations.start(SHARD, NEW, 192)
    return w


def test_a_signed_message_bound_to_an_approved_payment_is_kept(world: World) -> None:
    tx_id = world.payment("gate-01", "alice")
    assert world.inbox.receive("gate-01", world.message("gate-01", tx_id, "alice")) == ("stored")
    source, vector = world.next_template("alice")  # type: ignore[misc]
    assert source == "payment"
    assert np.allclose(vector, _unit(9, 192), atol=1e-6)
    cover = world.migrations.coverage(SHARD)
    assert (cover["customers"], cover["covered"], cover["from_payments"]) == (2, 1, 1)


def test_an_online_approval_counts_before_its_row_arrives(world: World) -> None:
    tx_id = str(uuid.uuid4())
    with world.db.transaction() as conn:
        conn.execute(
            "INSERT INTO authorizations VALUES (?, 'gate-01', 'alice', 100, 'approved', 'ok',"
            " '2026-12-06', 0, 'host-t')",
            (tx_id,),
        )
    assert world.inbox.receive("gate-01", world.message("gate-01", tx_id, "alice"))


def _refused(world: World, topic_device: str, message: dict[str, Any]) -> str:
    with pytest.raises(Refused) as caught:
        world.inbox.receive(topic_device, message)
    assert world.next_template("alice") is None
    return caught.value.reason


def test_unsigned_or_badly_signed_is_refused(world: World) -> None:
    tx_id = world.payment("gate-01", "alice")
    unsigned = world.message("gate-01", tx_id, "alice")
    unsigned["signature"] = "AAAA"
    assert _refused(world, "gate-01", unsigned) == "bad_signature"
    forged = world.message("gate-01", tx_id, "alice", signer="gate-02")  # another's key
    assert _refused(world, "gate-01", forged) == "bad_signature"
    tampered = world.message("gate-01", tx_id, "alice")
    tampered["token"] = "bob"
    assert _refused(world, "gate-01", tampered) == "bad_signature"


def test_from_another_devices_topic_is_refused(world: World) -> None:
    tx_id = world.payment("gate-01", "alice")
    assert _refused(world, "gate-02", world.message("gate-01", tx_id, "alice")) == "wrong_device"


def test_bound_to_another_devices_transaction_is_refused(world: World) -> None:
    tx_id = world.payment("gate-01", "alice")  # gate-02 claims gate-01's payment
    assert _refused(world, "gate-02", world.message("gate-02", tx_id, "alice")) == "other_device_tx"


def test_bound_to_a_declined_or_unknown_transaction_is_refused(world: World) -> None:
    declined = world.payment("gate-01", "alice", status="declined")
    assert _refused(world, "gate-01", world.message("gate-01", declined, "alice")) == (
        "not_approved"
    )
    unknown = str(uuid.uuid4())
    assert _refused(world, "gate-01", world.message("gate-01", unknown, "alice")) == "unknown_tx"


def test_bound_to_another_customers_payment_is_refused(world: World) -> None:
    tx_id = world.payment("gate-01", "bob")
    assert _refused(world, "gate-01", world.message("gate-01", tx_id, "alice")) == (
        "other_customer"
    )


def test_sealed_to_another_key_or_moved_is_refused(world: World) -> None:
    first, second = world.payment("gate-01", "alice"), world.payment("gate-01", "alice")
    moved = world.message("gate-01", first, "alice")
    other = world.message("gate-01", second, "alice")
    moved["sealed_b64"], moved["key_wrap"] = other["sealed_b64"], other["key_wrap"]
    moved["signature"] = sign_document(moved, world.keys["gate-01"])  # signed, but bound to tx 2
    assert _refused(world, "gate-01", moved) == "bad_seal"


def test_an_enrolment_template_is_never_replaced_by_a_payment(world: World) -> None:
    enrolled = _unit(77, 192)
    account = {"status": "active", "daily_limit": 10_000, "offline_allowance": 500}
    delta = world.shards.enrol(
        "alice", enrolled, shard_id=SHARD, account=account, embedder_version=NEW
    )
    assert [op["op"] for op in delta["ops"]] == ["account"]  # no vector of the new embedder
    tx_id = world.payment("gate-01", "alice")
    assert _reason(world, world.message("gate-01", tx_id, "alice")) == "kept_enrolment"
    source, vector = world.next_template("alice")  # type: ignore[misc]
    assert source == "enrolment" and np.allclose(vector, enrolled, atol=1e-6)


def _reason(world: World, message: dict[str, Any]) -> str:
    with pytest.raises(Refused) as caught:
        world.inbox.receive(message["device_id"], message)
    return caught.value.reason


def test_no_migration_no_template(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.device("gate-01")
    tx_id = w.payment("gate-01", "alice")
    assert _reason(w, w.message("gate-01", tx_id, "alice")) == "not_migrating"


def test_snapshots_carry_the_active_embedder_alone_until_the_switch(world: World) -> None:
    tx_id = world.payment("gate-01", "alice")
    world.inbox.receive("gate-01", world.message("gate-01", tx_id, "alice"))
    before = world.shards.snapshot(SHARD)
    assert (before["embedder_version"], before["dim"]) == (OLD, 128)
    assert before["migration"]["embedder_version"] == NEW
    assert base64.b64decode(before["migration"]["host_key"]) == base64.b64decode(
        host_key_b64(world.box)
    )
    parsed = parse_snapshot(before, None)  # the terminal's store takes it: 128-D, both tokens
    assert parsed.vectors.shape == (2, 128) and parsed.header.migration is not None

    with pytest.raises(BlinkpayError, match="below"):
        world.migrations.switch(SHARD, min_coverage=0.9)
    switched = world.migrations.switch(SHARD, min_coverage=0.5)
    assert switched["needs_enrolment"] == ["bob"]
    after = world.shards.snapshot(SHARD)
    assert (after["embedder_version"], after["dim"], "migration" in after) == (NEW, 192, False)
    assert [r["token"] for r in after["records"]] == ["alice"]
    assert after["version"] > before["version"]
    assert parse_snapshot(after, None).vectors.shape == (1, 192)
    assert world.db.query("SELECT COUNT(*) AS n FROM next_templates")[0]["n"] == 0
    # A template of the old embedder is refused now; bob re-enrols with the new one.
    account = {"status": "active", "daily_limit": 10_000, "offline_allowance": 500}
    with pytest.raises(BlinkpayError, match="uses"):
        world.shards.enrol(
            "bob", _unit(2, 128), shard_id=SHARD, account=account, embedder_version=OLD
        )
    delta = world.shards.enrol(
        "bob", _unit(5, 192), shard_id=SHARD, account=account, embedder_version=NEW
    )
    assert delta["embedder_version"] == NEW and delta["ops"][0]["op"] == "update"
    assert world.migrations.without_template(SHARD) == []


def test_erasure_deletes_the_new_template_too(world: World) -> None:
    tx_id = world.payment("gate-01", "alice")
    world.inbox.receive("gate-01", world.message("gate-01", tx_id, "alice"))
    world.shards.change("alice", "delete")
    assert world.next_template("alice") is None
