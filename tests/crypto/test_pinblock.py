"""ISO 9564-1 format 4 PIN blocks against published test vectors.

Sources of the vectors (public, independent of this code):
- [ep2] ep2 "eft/pos 2000" Security Specification, Version 8.0.0, section 8.4 "PIN
  Encryption" (AES key, PAN and enciphered block for PIN 1234), as quoted in
- [psec] the psec library's tests (github.com/knovichikhin/psec, tests/test_pinblock.py):
  the format 4 PIN and PAN field encodings, the deterministic encipherment with an
  all-0xFF random fill, a short-PAN block and blocks that must be refused.
- [paysec] the paysec Rust crate's tests (pinblock ISO 4 "decipher various"): three more
  enciphered blocks under key 00112233445566778899AABBCCDDEEFF.
"""

from __future__ import annotations

import pytest

from device.crypto.pinblock import (
    PinBlockError,
    decipher_pin_block,
    decode_pin_field,
    encipher_pin_block,
    encode_pan_field,
    encode_pin_field,
    pan_for_token,
)

KEY_A = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
FILL_FF = b"\xff" * 8


def test_ep2_vector_deciphers() -> None:  # [ep2]
    key = bytes.fromhex("C1D0F8FB4958670DBA40AB1F3752EF0D")
    block = bytes.fromhex("CC17F65586BFD0953010226C4FC5B3CA")
    assert decipher_pin_block(key, block, "432198765432109870") == "1234"


def test_psec_deterministic_encipherment() -> None:  # [psec]
    block = encipher_pin_block(KEY_A, "1234", "1234567890123456789", FILL_FF)
    assert block.hex().upper() == "28B41FDDD29B743E93124BD8E32D921E"
    assert decipher_pin_block(KEY_A, block, "1234567890123456789") == "1234"


@pytest.mark.parametrize(
    ("pin", "pan", "block"),
    [
        ("123456", "1", "39B69B1B91FE05D48F7EF0D68EB2CBD6"),  # [psec] PAN shorter than 12
        ("1234", "1234567890123456", "52DB178C6EDCE52E3A70F7FBC8E9C758"),  # [paysec]
        ("123456", "123456789012345678", "847A0209C659E4C4A79CA6A2A2217D31"),  # [paysec]
        ("12345678", "1234567890123456789", "018BFEC8B5EF60181A327AD8325A2BA4"),  # [paysec]
    ],
)
def test_published_blocks_decipher(pin: str, pan: str, block: str) -> None:
    assert decipher_pin_block(KEY_A, bytes.fromhex(block), pan) == pin


def test_field_encodings() -> None:  # [psec]
    assert encode_pin_field("1234", FILL_FF).hex().upper() == "441234AAAAAAAAAA" + "FF" * 8
    assert encode_pan_field("112233445566778899").hex().upper() == (
        "61122334455667788990000000000000"
    )
    assert decode_pin_field(bytes.fromhex("441234AAAAAAAAAA548ED7FD65495950")) == "1234"


@pytest.mark.parametrize(
    ("key", "block", "pan"),
    [  # [psec] blocks whose deciphered field is not a valid format 4 PIN field
        (
            "E60B15B90ABDF14CEE337C97440F0D6E",
            "7D5AF4C33667A2098626027FB7A9A1B7",
            "4266229809609384667",
        ),
        (
            "C7BBEBA16C5AD97D5866450718C03750",
            "2F9C910447F17293EC95DEDE1E3CA201",
            "8220499325458689523",
        ),
        (
            "820F6C7C12355BDFF1AB6CE12E8EED89",
            "CCF310A8300B46C925A86B1098089301",
            "939589847393485609",
        ),
        (
            "4FE3F0311936FBCE44F17159F1659CF09B2BF8913BB514A1",
            "51334B00A6CBA3EC7B1C6F871F060AFC",
            "2129100799029059903",
        ),
    ],
)
def test_published_bad_blocks_are_refused(key: str, block: str, pan: str) -> None:
    with pytest.raises(PinBlockError):
        decipher_pin_block(bytes.fromhex(key), bytes.fromhex(block), pan)


@pytest.mark.parametrize("key_len", [16, 24, 32])
@pytest.mark.parametrize("pin", ["0000", "9876543", "123456789012"])
def test_round_trip_with_every_aes_key_size(key_len: int, pin: str) -> None:
    key = bytes(range(key_len))
    pan = pan_for_token("user-42")
    block = encipher_pin_block(key, pin, pan, bytes(range(8)))
    assert len(block) == 16 and decipher_pin_block(key, block, pan) == pin


def test_block_is_bound_to_the_account() -> None:
    block = encipher_pin_block(KEY_A, "2468", pan_for_token("alice"), FILL_FF)
    with pytest.raises(PinBlockError):
        decipher_pin_block(KEY_A, block, pan_for_token("bob"))


def test_random_fill_changes_the_block() -> None:
    pan = pan_for_token("alice")
    one = encipher_pin_block(KEY_A, "2468", pan, bytes(8))
    other = encipher_pin_block(KEY_A, "2468", pan, FILL_FF)
    assert one != other


def test_pan_for_token_is_stable_16_digits() -> None:
    pan = pan_for_token("tok_abc")
    assert pan == pan_for_token("tok_abc") and len(pan) == 16 and pan.isdigit()
    assert pan != pan_for_token("tok_abd")
    with pytest.raises(PinBlockError):
        pan_for_token("")


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "", "１２３４"])
def test_bad_pins_are_refused_without_echoing_them(pin: str) -> None:
    with pytest.raises(PinBlockError) as info:
        encipher_pin_block(KEY_A, pin, "1234567890123456", FILL_FF)
    if pin:
        assert pin not in str(info.value)


@pytest.mark.parametrize(
    ("key", "pan", "fill", "block"),
    [
        (b"short", "1234567890123456", FILL_FF, None),  # not an AES key size
        (KEY_A, "", FILL_FF, None),
        (KEY_A, "12345678901234567890", FILL_FF, None),  # 20 digits
        (KEY_A, "12345x", FILL_FF, None),
        (KEY_A, "1234567890123456", b"\x00" * 7, None),  # fill must be 8 bytes
        (KEY_A, "1234567890123456", FILL_FF, b"\x00" * 15),  # block must be 16 bytes
    ],
)
def test_bad_inputs_are_refused(key: bytes, pan: str, fill: bytes, block: bytes | None) -> None:
    with pytest.raises(PinBlockError):
        if block is None:
            encipher_pin_block(key, "1234", pan, fill)
        else:
            decipher_pin_block(key, block, pan)


def test_decode_refuses_malformed_fields() -> None:
    with pytest.raises(PinBlockError):
        decode_pin_field(bytes.fromhex("541234AAAAAAAAAA548ED7FD65495950"))  # format 5
    with pytest.raises(PinBlockError):
        decode_pin_field(bytes.fromhex("441234AAAAAAAAAA"))  # 8 bytes
    with pytest.raises(PinBlockError):
        decode_pin_field(bytes.fromhex("43123AAAAAAAAAAA548ED7FD65495950"))  # length 3
    with pytest.raises(PinBlockError):
        decode_pin_field(bytes.fromhex("441234ABCDEFABCD548ED7FD65495950"))  # bad fill
    with pytest.raises(PinBlockError):
        decode_pin_field(bytes.fromhex("4412D4AAAAAAAAAA548ED7FD65495950"))  # not digits
