"""The shell's side of an embedder migration (device/shell/migration.py) on a real store:
the migration's embedder is loaded while the shard migrates, the paid face's vectors of it
go to the host sealed and signed, vectors of two embedders are never fused, and a switched
shard makes the terminal change embedder live (the old index gone at once)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backend.retemplate_inbox import host_key_b64
from device.config import Config, read_overlay
from device.core.config import LivenessConfig
from device.core.liveness import BlinkTracker
from device.crypto.signing import sign_document, verify_document
from device.crypto.template_box import open_from_device, retemplate_context
from device.net import schemas
from device.shell.face_book import FaceBook, FrameFaces
from device.shell.migration import EmbedderChange
from device.store.keys import provision_keys
from device.store.terminal_store import Store, open_store, store_key_paths
from device.store.updates import encode_vector

OLD, NEW = "old-embedder-1", "new-embedder-2"
SHARD = "station-e"
ACCOUNT = {"status": "active", "daily_limit": 5000, "offline_allowance": 1000}


@dataclass
class FakeEmbedder:
    version: str
    dim: int


@dataclass
class FakePipeline:
    embedder: Any
    next_embedder: Any = None


@dataclass(frozen=True)
class Quality:
    ok: bool = True


@dataclass
class Eyes:
    right: float = 0.3
    left: float = 0.3


@dataclass
class Face:
    track_id: int
    embedding: np.ndarray
    embedder_version: str
    next_embedding: np.ndarray | None = None
    next_embedder_version: str | None = None
    eyes: Eyes = field(default_factory=Eyes)
    quality: Quality = field(default_factory=Quality)


def _unit(dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _snapshot(version: int, embedder: str, dim: int, **extra: Any) -> dict[str, Any]:
    return {
        "shard_id": SHARD,
        "version": version,
        "embedder_version": embedder,
        "dim": dim,
        **extra,
        "records": [
            {"token": t, "vector_b64": encode_vector(_unit(dim, i)), "account": ACCOUNT}
            for i, t in enumerate(("alice", "bob"))
        ],
    }


class Rig:
    def __init__(self, folder: Path) -> None:
        self.config = Config.model_validate({"device": {"data_dir": str(folder / "data")}})
        provision_keys(store_key_paths(self.config.store, self.config.device.data_dir))
        self.store: Store = open_store(
            self.config.store, self.config.device.data_dir, OLD, 16, SHARD
        )
        self.pipeline = FakePipeline(FakeEmbedder(OLD, 16))
        self.faces = FaceBook(lambda: BlinkTracker(LivenessConfig()))
        self.key = Ed25519PrivateKey.generate()
        self.host_box = X25519PrivateKey.generate()
        self.sent: list[dict[str, Any]] = []
        self.resyncs = 0
        self.loaded: list[str] = []
        self.change = EmbedderChange(
            pipeline=self.pipeline,
            shard=self.store.shard,
            faces=self.faces,
            shipped={OLD: "old", NEW: "new"},
            load_embedder=self._load,
            device_id="gate-e",
            sign=lambda document: sign_document(document, self.key),
            publish=self._publish,
            resync=self._resync,
            persist=self._persist,
        )

    def _load(self, name: str) -> FakeEmbedder:
        self.loaded.append(name)
        return {"old": FakeEmbedder(OLD, 16), "new": FakeEmbedder(NEW, 24)}[name]

    def _publish(self, message: dict[str, Any]) -> bool:
        schemas.check("Retemplate", message)
        self.sent.append(message)
        return True

    def _resync(self) -> None:
        self.resyncs += 1

    def _persist(self, name: str) -> None:
        from device.config import keep_embedder

        keep_embedder(self.config.device.data_dir, name)

    def migrating(self, version: int = 2) -> None:
        migration = {"embedder_version": NEW, "dim": 24, "host_key": host_key_b64(self.host_box)}
        result = self.store.shard.apply_snapshot(_snapshot(version, OLD, 16, migration=migration))
        assert result.outcome == "applied"


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    assert made.store.shard.apply_snapshot(_snapshot(1, OLD, 16)).outcome == "applied"
    yield made
    made.store.close()


def test_the_migrations_embedder_runs_while_the_shard_migrates(rig: Rig) -> None:
    rig.change.tick(0.0, idle=True)
    assert rig.pipeline.next_embedder is None and rig.loaded == []
    rig.migrating()
    rig.change.tick(10.0, idle=True)
    assert rig.pipeline.next_embedder == FakeEmbedder(NEW, 24)
    rig.store.shard.apply_snapshot(_snapshot(3, OLD, 16))  # the operator cancelled
    rig.change.tick(20.0, idle=True)
    assert rig.pipeline.next_embedder is None


def test_the_paid_face_goes_to_the_host_sealed_signed_and_bound(rig: Rig) -> None:
    rig.migrating()
    rig.change.tick(0.0, idle=True)
    vectors = [_unit(24, 40 + i) for i in range(3)]
    for i, vector in enumerate(vectors):
        face = Face(7, _unit(16, 0), OLD, vector, NEW)
        rig.faces.frame(FrameFaces(0.1 * i, [face]), bound_track=7)
    tx_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    assert rig.change.paid(tx_id, "alice", 7)
    (message,) = rig.sent
    assert message["tx_id"] == tx_id and message["frames"] == 3
    assert verify_document(message, rig.key.public_key())
    raw = open_from_device(
        rig.host_box,
        message["key_wrap"],
        message["sealed_b64"],
        retemplate_context(SHARD, "gate-e", tx_id),
        "alice",
    )
    fused = np.mean(vectors, axis=0)
    assert np.allclose(np.frombuffer(raw, "<f4"), fused / np.linalg.norm(fused), atol=1e-6)
    assert base64.b64decode(message["sealed_b64"]) != raw  # never the vector in clear


def test_no_migration_or_no_vector_sends_nothing(rig: Rig) -> None:
    rig.faces.frame(FrameFaces(0.0, [Face(7, _unit(16, 0), OLD)]), bound_track=7)
    assert not rig.change.paid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "alice", 7)
    rig.migrating()
    rig.change.tick(0.0, idle=True)
    assert not rig.change.paid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "alice", 7)
    assert rig.sent == [] and rig.change.counters == {"no_vector": 1}


def test_vectors_of_two_embedders_are_never_fused(rig: Rig) -> None:
    rig.faces.frame(FrameFaces(0.0, [Face(7, _unit(16, 1), OLD)]), bound_track=7)
    rig.faces.frame(FrameFaces(0.1, [Face(7, _unit(24, 2), NEW)]), bound_track=7)
    assert rig.faces.embedding_version(7) == NEW
    fused = rig.faces.fused_embedding(7)
    assert fused is not None and np.allclose(fused, _unit(24, 2))


def test_a_switched_shard_changes_the_embedder_live_once_idle(rig: Rig) -> None:
    rig.migrating()
    rig.change.tick(0.0, idle=True)
    refused = rig.store.shard.apply_snapshot(_snapshot(3, NEW, 24))
    assert refused.reason == "wrong_embedder_version"
    rig.change.tick(10.0, idle=False)  # a payment is under way: later
    assert rig.pipeline.embedder.version == OLD and rig.store.shard.index_embedder == OLD
    rig.change.tick(20.0, idle=True)
    assert rig.pipeline.embedder == FakeEmbedder(NEW, 24) and rig.pipeline.next_embedder is None
    assert rig.store.shard.index_embedder is None  # the old index went at once
    assert rig.resyncs == 1
    assert read_overlay(rig.config.device.data_dir)["vision"] == {"embedder": "new"}
    assert rig.store.shard.apply_snapshot(_snapshot(3, NEW, 24)).outcome == "applied"
    assert rig.store.shard.search(_unit(24, 1), 1, NEW)[0][0] == "bob"
    assert rig.store.shard.search(_unit(16, 1), 1, OLD) == []


def test_a_shard_switched_to_an_embedder_not_shipped_matches_nobody(rig: Rig) -> None:
    rig.store.shard.apply_snapshot(_snapshot(2, "unknown-embedder", 24))
    rig.change.tick(0.0, idle=True)
    assert rig.pipeline.embedder.version == OLD
    assert rig.change.counters == {"cannot_switch": 1}
    assert read_overlay(rig.config.device.data_dir) == {}
