"""MDB words, blocks and checksums (MDB/ICP 4.x, Section 2).

A word on the bus is 9 bits: 8 data bits and the mode bit (Section 2.2). From the VMC the
mode bit marks the ADDRESS byte, the first of a block; from a peripheral it marks the
LAST byte of its answer (the CHK, or a lone ACK/NAK). CHK is the sum of every byte of the
block before it, modulo 256 (Section 2.2). The VMC answers a peripheral's data with ACK,
RET (send it again) or NAK, mode bit clear.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# (byte, mode bit) - one 9-bit MDB word
Word = tuple[int, bool]

ACK = 0x00
RET = 0xAA
NAK = 0xFF

# Section 2.3 / 7.1: cashless device #1 answers on 10H..17H, cashless #2 on 60H..67H.
CASHLESS_1 = 0x10
CASHLESS_2 = 0x60
ADDRESS_MASK = 0xF8  # the top five bits address the peripheral, the low three the command

# Section 7.3: VMC commands to a cashless device (offsets from its address)
RESET = 0x00
SETUP = 0x01
POLL = 0x02
VEND = 0x03
READER = 0x04
REVALUE = 0x05
EXPANSION = 0x07

# SETUP subcommands (Section 7.4.2, 7.4.3)
SETUP_CONFIG = 0x00
SETUP_PRICES = 0x01
# VEND subcommands (Section 7.4.5-7.4.10)
VEND_REQUEST = 0x00
VEND_CANCEL = 0x01
VEND_SUCCESS = 0x02
VEND_FAILURE = 0x03
SESSION_COMPLETE = 0x04
CASH_SALE = 0x05
# READER subcommands (Section 7.4.12-7.4.14)
READER_DISABLE = 0x00
READER_ENABLE = 0x01
READER_CANCEL = 0x02
# REVALUE subcommands (level 2+)
REVALUE_REQUEST = 0x00
REVALUE_LIMIT = 0x01
# EXPANSION subcommands (Section 7.4.19)
EXPANSION_REQUEST_ID = 0x00

# Poll responses, first byte (Z1) of a cashless device's answer (Section 7.4.4)
JUST_RESET = 0x00
READER_CONFIG_DATA = 0x01
BEGIN_SESSION = 0x03
SESSION_CANCEL_REQUEST = 0x04
VEND_APPROVED = 0x05
VEND_DENIED = 0x06
END_SESSION = 0x07
CANCELLED = 0x08
PERIPHERAL_ID = 0x09
MALFUNCTION = 0x0A
CMD_OUT_OF_SEQUENCE = 0x0B  # level 2+
REVALUE_APPROVED = 0x0D
REVALUE_DENIED = 0x0E
REVALUE_LIMIT_AMOUNT = 0x0F

# Length of each VMC command block WITHOUT its CHK, by (command, subcommand); None as the
# subcommand means the command has none. Level 1 and 2 forms only (16-bit money).
COMMAND_LENGTHS: dict[tuple[int, int | None], int] = {
    (RESET, None): 1,
    (POLL, None): 1,
    (SETUP, SETUP_CONFIG): 6,  # 11 00 Y2 VMC level, Y3 columns, Y4 rows, Y5 display info
    (SETUP, SETUP_PRICES): 6,  # 11 01 Y2-Y3 max price, Y4-Y5 min price
    (VEND, VEND_REQUEST): 6,  # 13 00 Y2-Y3 item price, Y4-Y5 item number
    (VEND, VEND_CANCEL): 2,
    (VEND, VEND_SUCCESS): 4,  # 13 02 Y2-Y3 item number
    (VEND, VEND_FAILURE): 2,
    (VEND, SESSION_COMPLETE): 2,
    (VEND, CASH_SALE): 6,  # 13 05 Y2-Y3 item price, Y4-Y5 item number
    (READER, READER_DISABLE): 2,
    (READER, READER_ENABLE): 2,
    (READER, READER_CANCEL): 2,
    (REVALUE, REVALUE_REQUEST): 4,  # 15 00 Y2-Y3 revalue amount
    (REVALUE, REVALUE_LIMIT): 2,
    (EXPANSION, EXPANSION_REQUEST_ID): 31,  # 17 00 + 29 bytes of VMC identification
}
_HAS_SUBCOMMAND = {cmd for cmd, sub in COMMAND_LENGTHS if sub is not None}


def checksum(data: Iterable[int]) -> int:
    """CHK: the sum of the bytes modulo 256 (Section 2.2)."""
    return sum(data) & 0xFF


def expected_length(data: Sequence[int]) -> int | None:
    """The full length (without CHK) of a block starting with `data`; None while the
    subcommand byte is still missing or the command is unknown."""
    if not data:
        return None
    cmd = data[0] & ~ADDRESS_MASK & 0xFF
    if cmd not in _HAS_SUBCOMMAND:
        return COMMAND_LENGTHS.get((cmd, None))
    if len(data) < 2:
        return None
    return COMMAND_LENGTHS.get((cmd, data[1]))


def peripheral_answer(data: Sequence[int]) -> list[Word]:
    """A peripheral's data answer: the bytes, then CHK with the mode bit set."""
    return [(b, False) for b in data] + [(checksum(data), True)]


def peripheral_ack() -> list[Word]:
    return [(ACK, True)]


def peripheral_nak() -> list[Word]:
    return [(NAK, True)]


def vmc_command(address_and_command: int, data: Sequence[int] = ()) -> list[Word]:
    """A VMC block: the address byte with the mode bit, the data, CHK (mode bit clear)."""
    block = [address_and_command, *data]
    return [(address_and_command, True)] + [(b, False) for b in data] + [(checksum(block), False)]


def u16(value: int) -> list[int]:
    """MDB money and item numbers: 16-bit unsigned, most significant byte first (7.1)."""
    return [(value >> 8) & 0xFF, value & 0xFF]


def read_u16(data: Sequence[int], at: int) -> int:
    return (data[at] << 8) | data[at + 1]


@dataclass(frozen=True)
class Block:
    """A VMC block as received: its bytes (address first) and the CHK byte that came with
    it; `ok` tells whether the CHK matched."""

    data: tuple[int, ...]
    chk: int

    @property
    def ok(self) -> bool:
        return checksum(self.data) == self.chk

    @property
    def address(self) -> int:
        return self.data[0] & ADDRESS_MASK

    @property
    def command(self) -> int:
        return self.data[0] & ~ADDRESS_MASK & 0xFF

    @property
    def subcommand(self) -> int | None:
        return self.data[1] if len(self.data) > 1 else None


def words(text: str) -> list[Word]:
    """Words from hex, for tests and logs: "12! 12" is 12H with the mode bit, then 12H."""
    return [(int(tok.rstrip("!"), 16), tok.endswith("!")) for tok in text.split()]


def hex_words(seq: Sequence[Word]) -> str:
    """The inverse of words(): "12! 12"."""
    return " ".join(f"{b:02X}{'!' if mode else ''}" for b, mode in seq)
