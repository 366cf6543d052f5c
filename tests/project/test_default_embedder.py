"""The host's default shard embedder is the one the terminal's default embedder ships as."""

from __future__ import annotations

from backend.config import HostConfig
from device.config import Config
from device.vision.models import load_manifest


def test_host_default_embedder_is_the_terminals() -> None:
    role = f"embedder_{Config().vision.embedder}"
    entry = load_manifest().entry(role).raw
    assert HostConfig().embedder_version == entry["embedder_version"]
    assert HostConfig().dim == entry["embedding_dim"]
