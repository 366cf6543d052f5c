"""Templates are encrypted on the wire: a plain subscriber to the shard topics (no device
key) sees sealed templates only, never the vector bytes, in clear or base64; a registered
terminal opens them and matches; a terminal the host does not know is refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.net.schemas import PayloadRejected
from device.net.sealed_shard import TemplateOpener
from tests.conftest import Broker
from tests.net.conftest import PREFIX, SHARD, BackendKeys, make_host, make_terminal, unit_vector
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt

TOKENS = {f"tok-{n}": unit_vector(40 + n) for n in range(3)}


def _needles(vector: np.ndarray) -> list[bytes]:
    """Every way the template could show up: its float32 bytes, a good part of them, base64."""
    raw = np.asarray(vector, dtype="<f4").tobytes()
    encoded = base64.b64encode(raw)
    return [raw, raw[:16], raw[-16:], encoded, encoded[:16]]


def _wire_documents(messages: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """The deltas and the reassembled snapshots, as any subscriber can read them."""
    documents, chunks = [], {}
    for topic, raw in messages:
        body = json.loads(raw)["body"]
        if topic.endswith("/delta"):
            documents.append(body["delta"])
        else:
            chunks.setdefault(body["sha256"], {})[body["index"]] = body
    for parts in chunks.values():
        if len(parts) == next(iter(parts.values()))["count"]:
            blob = b"".join(base64.b64decode(parts[i]["data_b64"]) for i in sorted(parts))
            documents.append(json.loads(blob))
    return documents


def test_a_subscriber_without_a_device_key_learns_no_template(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, recorder_factory
) -> None:  # type: ignore[no-untyped-def]
    eavesdropper = recorder_factory(broker)  # a plain mosquitto client on the whole prefix
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    terminal.register(host)
    net, shard = terminal.net, terminal.store.shard
    try:
        net.start()
        assert wait_until(lambda: net.shard_sync.version == 1)
        for token, vector in TOKENS.items():
            host.enrol(token, vector, shard_id=SHARD, balance=100)
        assert wait_until(lambda: net.shard_sync.version == 1 + len(TOKENS))
        assert host.publish_snapshot(SHARD) == 1 + len(TOKENS)  # the whole shard, too
        assert wait_until(lambda: len(_shard_messages(eavesdropper)) >= len(TOKENS) + 2)
        for token, vector in TOKENS.items():  # the terminal itself opened every one
            assert shard.search(vector, k=1)[0][0] == token
    finally:
        terminal.stop()
        host.stop()

    messages = _shard_messages(eavesdropper)
    wire = b"".join(raw for _, raw in messages)
    documents = _wire_documents(messages)
    opened = json.dumps(documents).encode()
    assert any("records" in d and d["records"] for d in documents), "no snapshot seen"
    for vector in TOKENS.values():
        for needle in _needles(vector):
            assert needle not in wire and needle not in opened
    assert b"vector_b64" not in wire and b"vector_b64" not in opened
    sealed = [
        base64.b64decode(item["sealed_b64"])
        for d in documents
        for item in d.get("records", d.get("ops", []))
        if "sealed_b64" in item
    ]
    assert len(sealed) >= 2 * len(TOKENS)
    for blob in sealed:  # the bytes inside the seal are not the vector either
        assert all(needle not in blob for v in TOKENS.values() for needle in _needles(v)[:3])

    # With a key of its own, an outsider is no recipient; the right id with the wrong key
    # does not open the wrapped content key either.
    delta = next(d for d in documents if "ops" in d)
    for device_id in ("outsider", terminal.device_id):
        opener = TemplateOpener(device_id, X25519PrivateKey.generate())
        with pytest.raises(PayloadRejected) as err:
            opener.delta(delta)
        assert err.value.reason in ("not_a_recipient", "bad_seal")
    assert TemplateOpener(terminal.device_id, terminal.box_key).delta(delta)["ops"]


def test_an_unregistered_terminal_refuses_what_it_cannot_open(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    host.enrol("tok-z", unit_vector(9), shard_id=SHARD, balance=100, publish=False)
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    # its signing key is known (the host answers it), its X25519 key never registered
    host.register_device(terminal.device_id, terminal.public_key_pem(), None, SHARD)
    try:
        terminal.net.start()
        assert wait_until(lambda: terminal.net.link.rejects["not_a_recipient"] >= 1)
        assert terminal.store.shard.account("tok-z") is None
    finally:
        terminal.stop()
        host.stop()


def _shard_messages(recorder) -> list[tuple[str, bytes]]:  # type: ignore[no-untyped-def]
    with recorder.lock:
        return [(t, raw) for t, raw in recorder.messages if t.startswith(f"{PREFIX}/shard/")]
