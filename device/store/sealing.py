"""AES-256-GCM sealing of templates, bound to their token, shard and embedder version.

The associated data makes a record fail to decrypt when it is moved to another token,
another shard or used with another embedder. Every seal draws a fresh 96-bit nonce.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from device.errors import BlinkpayError
from device.store.keys import DataKey

NONCE_BYTES = 12


class UnsealError(BlinkpayError):
    """A template record did not decrypt: wrong key, tampered, moved or swapped."""


def _length_prefixed(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def associated_data(token: str, shard_id: str, embedder_version: str) -> bytes:
    return _aad_prefix(shard_id, embedder_version) + token.encode()


def _aad_prefix(shard_id: str, embedder_version: str) -> bytes:
    # Length prefixes keep the fields unambiguous; the token (last) takes the rest.
    return b"blinkpay-template-v1" + _length_prefixed(shard_id) + _length_prefixed(embedder_version)


class TemplateSealer:
    def __init__(self, key: DataKey) -> None:
        self.key_id = key.key_id
        self._aead = AESGCM(key.key)

    def seal(self, token: str, shard_id: str, embedder_version: str, data: bytes) -> tuple:
        nonce = os.urandom(NONCE_BYTES)
        aad = associated_data(token, shard_id, embedder_version)
        return nonce, self._aead.encrypt(nonce, data, aad)

    def unseal(
        self, token: str, shard_id: str, embedder_version: str, nonce: bytes, ciphertext: bytes
    ) -> bytes:
        return next(self.unseal_many(shard_id, embedder_version, [(token, nonce, ciphertext)]))[1]

    def unseal_many(
        self,
        shard_id: str,
        embedder_version: str,
        rows: Iterable[tuple[str, bytes, bytes]],
        bad: list[str] | None = None,
    ) -> Iterator[tuple[str, bytes]]:
        """(token, plaintext) per (token, nonce, ciphertext): the batch path used at load.

        A record that does not decrypt raises UnsealError, or, when `bad` is given, has
        its token appended there and is skipped (one damaged record must not stop the
        terminal from serving everyone else).
        """
        prefix = _aad_prefix(shard_id, embedder_version)
        decrypt = self._aead.decrypt
        for token, nonce, ciphertext in rows:
            try:
                yield token, decrypt(nonce, ciphertext, prefix + token.encode())
            except InvalidTag:
                if bad is None:
                    raise UnsealError(
                        f"template of {token!r} does not decrypt (damaged or moved record); "
                        "`blinkpay db verify` lists them, a snapshot replaces them"
                    ) from None
                bad.append(token)
