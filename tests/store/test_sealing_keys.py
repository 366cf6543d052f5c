"""AES-256-GCM sealing bound to token, shard and embedder; key files and rekey."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from device.config import Config
from device.crypto.signing import KeyFileError, sign_document, verify_document
from device.store.keys import DataKey, generate_data_key, load_data_key, provision_keys
from device.store.sealing import NONCE_BYTES, TemplateSealer, UnsealError
from device.store.terminal_store import Store, open_store, store_key_paths

from .conftest import DIM, EMBEDDER, SHARD

PLAINTEXT = np.arange(DIM, dtype="<f4").tobytes()


def test_seal_roundtrip_uses_a_fresh_nonce_each_time() -> None:
    sealer = TemplateSealer(DataKey.generate())
    first = sealer.seal("tok-a", SHARD, EMBEDDER, PLAINTEXT)
    second = sealer.seal("tok-a", SHARD, EMBEDDER, PLAINTEXT)
    assert len(first[0]) == NONCE_BYTES
    assert first[0] != second[0] and first[1] != second[1]
    assert PLAINTEXT not in first[1]
    assert sealer.unseal("tok-a", SHARD, EMBEDDER, *first) == PLAINTEXT


@pytest.mark.parametrize(
    ("token", "shard", "embedder"),
    [("tok-b", SHARD, EMBEDDER), ("tok-a", "other-shard", EMBEDDER), ("tok-a", SHARD, "emb-v2")],
)
def test_record_moved_to_another_token_shard_or_embedder_fails(
    token: str, shard: str, embedder: str
) -> None:
    sealer = TemplateSealer(DataKey.generate())
    nonce, ciphertext = sealer.seal("tok-a", SHARD, EMBEDDER, PLAINTEXT)
    with pytest.raises(UnsealError):
        sealer.unseal(token, shard, embedder, nonce, ciphertext)


def test_wrong_key_or_flipped_bit_fails() -> None:
    sealer = TemplateSealer(DataKey.generate())
    nonce, ciphertext = sealer.seal("tok-a", SHARD, EMBEDDER, PLAINTEXT)
    with pytest.raises(UnsealError):
        TemplateSealer(DataKey.generate()).unseal("tok-a", SHARD, EMBEDDER, nonce, ciphertext)
    flipped = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    with pytest.raises(UnsealError):
        sealer.unseal("tok-a", SHARD, EMBEDDER, nonce, flipped)


def test_swapped_records_in_the_database_fail_to_decrypt(
    enrolled: tuple[Store, list[str], np.ndarray],
) -> None:
    store, tokens, _ = enrolled
    db = store.database.db
    a = db.execute(
        "SELECT nonce, ciphertext FROM templates WHERE token = ?", [tokens[0]]
    ).fetchone()
    b = db.execute(
        "SELECT nonce, ciphertext FROM templates WHERE token = ?", [tokens[1]]
    ).fetchone()
    db.execute("UPDATE templates SET nonce = ?, ciphertext = ? WHERE token = ?", [*b, tokens[0]])
    db.execute("UPDATE templates SET nonce = ?, ciphertext = ? WHERE token = ?", [*a, tokens[1]])
    info = store.shard.info()
    assert info is not None
    with pytest.raises(UnsealError):
        list(store.shard.decrypt_rows(info))


def test_key_files_are_0600_in_a_0700_directory(config: Config) -> None:
    paths = store_key_paths(config.store, config.device.data_dir)
    for path in (paths.data_key, paths.signing_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.data_key.parent.stat().st_mode) == 0o700
    assert len(paths.data_key.read_bytes()) == 32


def test_provisioning_refuses_to_overwrite_keys(config: Config) -> None:
    with pytest.raises(KeyFileError, match="already exists"):
        provision_keys(store_key_paths(config.store, config.device.data_dir))


def test_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "data.key"
    generate_data_key(path)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_data_key(path)
    os.chmod(path, 0o600)
    assert load_data_key(path).key == path.read_bytes()


def test_missing_or_short_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="provision"):
        load_data_key(tmp_path / "nope.key")
    with pytest.raises(KeyFileError, match="32 bytes"):
        DataKey.from_bytes(b"short")


def test_opening_with_another_key_is_refused(
    enrolled: tuple[Store, list[str], np.ndarray], config: Config
) -> None:
    store, _, _ = enrolled
    store.close()
    generate_data_key(
        store_key_paths(config.store, config.device.data_dir).data_key, overwrite=True
    )
    with pytest.raises(KeyFileError, match="not the one"):
        open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)


def test_rekey_reencrypts_everything_and_the_old_key_no_longer_opens(
    enrolled: tuple[Store, list[str], np.ndarray], config: Config
) -> None:
    store, tokens, vectors = enrolled
    paths = store_key_paths(config.store, config.device.data_dir)
    old_key = load_data_key(paths.data_key)
    before = dict(store.database.db.execute("SELECT token, ciphertext FROM templates").fetchall())
    assert store.rekey() == len(tokens)
    new_key = load_data_key(paths.data_key)
    assert new_key.key_id != old_key.key_id
    assert stat.S_IMODE(paths.data_key.stat().st_mode) == 0o600
    assert not paths.data_key.with_name(paths.data_key.name + ".new").exists()
    after = dict(store.database.db.execute("SELECT token, ciphertext FROM templates").fetchall())
    assert all(before[t] != after[t] for t in tokens)
    store.close()
    reopened = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    try:
        assert reopened.shard.search(vectors[3], 1)[0][0] == tokens[3]
        info = reopened.shard.info()
        assert info is not None and info.key_id == new_key.key_id
        with pytest.raises(UnsealError):
            TemplateSealer(old_key).unseal(
                tokens[0],
                SHARD,
                EMBEDDER,
                *reopened.database.db.execute(
                    "SELECT nonce, ciphertext FROM templates WHERE token = ?", [tokens[0]]
                ).fetchone(),
            )
    finally:
        reopened.close()


def test_rekey_that_fails_midway_changes_nothing(
    enrolled: tuple[Store, list[str], np.ndarray], config: Config
) -> None:
    store, tokens, _ = enrolled
    db = store.database.db
    # A corrupt record makes decryption fail partway: nothing may be re-encrypted.
    db.execute("UPDATE templates SET ciphertext = zeroblob(80) WHERE token = ?", [tokens[-1]])
    before = db.execute("SELECT token, nonce, ciphertext FROM templates ORDER BY token").fetchall()
    key_before = store_key_paths(config.store, config.device.data_dir).data_key.read_bytes()
    with pytest.raises(UnsealError):
        store.rekey()
    assert (
        db.execute("SELECT token, nonce, ciphertext FROM templates ORDER BY token").fetchall()
        == before
    )
    assert store_key_paths(config.store, config.device.data_dir).data_key.read_bytes() == key_before


def test_interrupted_rekey_is_finished_or_rolled_back_at_open(
    enrolled: tuple[Store, list[str], np.ndarray], config: Config
) -> None:
    store, tokens, vectors = enrolled
    paths = store_key_paths(config.store, config.device.data_dir)
    pending = paths.data_key.with_name(paths.data_key.name + ".new")
    # Crash after the commit, before the key file rename: the new key must take over.
    new = DataKey.generate()
    pending.write_bytes(new.key)
    os.chmod(pending, 0o600)
    store.shard.rekey(new)
    store.close()
    reopened = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    assert load_data_key(paths.data_key).key_id == new.key_id and not pending.exists()
    assert reopened.shard.search(vectors[0], 1)[0][0] == tokens[0]
    reopened.close()
    # Crash before the commit: the pending key is discarded, the current one stays.
    pending.write_bytes(DataKey.generate().key)
    os.chmod(pending, 0o600)
    again = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    assert not pending.exists() and load_data_key(paths.data_key).key_id == new.key_id
    again.close()


def test_signatures_cover_the_document_without_its_signature(config: Config) -> None:
    from device.crypto.signing import load_signing_key

    key = load_signing_key(store_key_paths(config.store, config.device.data_dir).signing_key)
    document = {"id": "x", "amount": 250}
    document["signature"] = sign_document(document, key)
    assert verify_document(document, key.public_key())
    assert not verify_document({**document, "amount": 251}, key.public_key())


def test_a_damaged_record_is_left_out_at_load_and_the_rest_still_serve(
    enrolled: tuple[Store, list[str], np.ndarray], config: Config
) -> None:
    store, tokens, vectors = enrolled
    store.database.db.execute(
        "UPDATE templates SET ciphertext = zeroblob(80) WHERE token = ?", [tokens[4]]
    )
    store.close()
    reopened = open_store(config.store, config.device.data_dir, EMBEDDER, DIM, SHARD)
    try:
        assert reopened.shard.undecryptable == [tokens[4]]
        assert tokens[4] not in reopened.shard.index and len(reopened.shard.index) == 19
        assert reopened.shard.search(vectors[5], 1)[0][0] == tokens[5]
    finally:
        reopened.close()
