"""ISO 9564-1 format 4 PIN blocks (AES), pure: the random fill is passed in.

Format 4 builds two 16-byte plain fields and ties them in two AES steps:
    PIN field: 4 | PIN length | PIN digits | 'A' fill to 14 nibbles | 16 random nibbles
    PAN field: (PAN length - 12, or 0) | PAN right-justified in 12+ digits | '0' fill
    block = AES_K( AES_K(PIN field) XOR PAN field )
The host reverses it with the same key and PAN (decipher_pin_block).

blinkpay has no card number: the "PAN" is derived from the opaque account token the same
way on the device and the host (`pan_for_token`), so a block made for one user does not
decipher for another. The key is the provisioned PIN key (AES-128/192/256) shared with the
host. The PIN itself is never logged, stored or sent: only the enciphered block is.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
RANDOM_FILL_BYTES = 8
PAN_DIGITS = 16
_PAN_LABEL = b"blinkpay-pan-v1:"


class PinBlockError(ValueError):
    """A malformed PIN, PAN, key, fill or block (the message never contains PIN digits)."""


def _aes(key: bytes, data: bytes, encrypt: bool) -> bytes:
    if len(key) not in (16, 24, 32):
        raise PinBlockError("the PIN key must be 16, 24 or 32 bytes (AES)")
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # one block: ECB is the standard's step
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def pan_for_token(token: str) -> str:
    """The 16-digit PAN stand-in for an account token: the first 8 bytes of
    SHA-256("blinkpay-pan-v1:" + token) as a big-endian integer, mod 10^16, zero-padded."""
    if not token:
        raise PinBlockError("empty account token")
    digest = hashlib.sha256(_PAN_LABEL + token.encode("utf-8")).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**PAN_DIGITS).zfill(PAN_DIGITS)


def encode_pin_field(pin: str, random_fill: bytes) -> bytes:
    if not (4 <= len(pin) <= 12 and pin.isascii() and pin.isdigit()):
        raise PinBlockError("a PIN must be 4 to 12 digits")
    if len(random_fill) != RANDOM_FILL_BYTES:
        raise PinBlockError(f"the random fill must be {RANDOM_FILL_BYTES} bytes")
    nibbles = f"4{len(pin):X}{pin}" + "A" * (14 - len(pin))
    return bytes.fromhex(nibbles) + random_fill


def encode_pan_field(pan: str) -> bytes:
    if not (1 <= len(pan) <= 19 and pan.isascii() and pan.isdigit()):
        raise PinBlockError("a PAN must be 1 to 19 digits")
    nibbles = f"{max(0, len(pan) - 12)}{pan.rjust(12, '0')}".ljust(32, "0")
    return bytes.fromhex(nibbles)


def decode_pin_field(field: bytes) -> str:
    nibbles = field.hex().upper()
    if len(field) != BLOCK or nibbles[0] != "4":
        raise PinBlockError("not an ISO 9564 format 4 PIN field")
    length = int(nibbles[1], 16)
    if not 4 <= length <= 12:
        raise PinBlockError("PIN length out of range")
    pin, fill = nibbles[2 : 2 + length], nibbles[2 + length : 16]
    if not pin.isdigit() or fill != "A" * (14 - length):
        raise PinBlockError("PIN field digits or fill are wrong (wrong key or PAN?)")
    return pin


def encipher_pin_block(key: bytes, pin: str, pan: str, random_fill: bytes) -> bytes:
    """The 16-byte enciphered format 4 block. `random_fill` must come from a CSPRNG
    (the shell passes os.urandom(8)); it is a parameter so the function is testable."""
    pin_field = encode_pin_field(pin, random_fill)
    pan_field = encode_pan_field(pan)
    return _aes(key, _xor(_aes(key, pin_field, True), pan_field), True)


def decipher_pin_block(key: bytes, block: bytes, pan: str) -> str:
    """The PIN from an enciphered block (the host's side)."""
    if len(block) != BLOCK:
        raise PinBlockError("a format 4 PIN block is 16 bytes")
    intermediate = _xor(_aes(key, block, False), encode_pan_field(pan))
    return decode_pin_field(_aes(key, intermediate, False))
