"""The VMC's side of the cashless conversation, pure: command blocks to send and the
reader's answers parsed. Used by the VMC simulator and by the tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from device.vending.mdb import frames as f
from device.vending.mdb.frames import Word


def reset(address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.RESET)


def poll(address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.POLL)


def setup_config(
    vmc_level: int = 1, cols: int = 0, rows: int = 0, display: int = 0, address: int = f.CASHLESS_1
) -> list[Word]:
    return f.vmc_command(address | f.SETUP, [f.SETUP_CONFIG, vmc_level, cols, rows, display])


def setup_prices(max_price: int, min_price: int, address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.SETUP, [f.SETUP_PRICES, *f.u16(max_price), *f.u16(min_price)])


def vend_request(price: int, item: int, address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.VEND, [f.VEND_REQUEST, *f.u16(price), *f.u16(item)])


def vend_cancel(address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.VEND, [f.VEND_CANCEL])


def vend_success(item: int, address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.VEND, [f.VEND_SUCCESS, *f.u16(item)])


def vend_failure(address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.VEND, [f.VEND_FAILURE])


def session_complete(address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.VEND, [f.SESSION_COMPLETE])


def cash_sale(price: int, item: int, address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.VEND, [f.CASH_SALE, *f.u16(price), *f.u16(item)])


def reader(sub: int, address: int = f.CASHLESS_1) -> list[Word]:
    return f.vmc_command(address | f.READER, [sub])


def request_id(address: int = f.CASHLESS_1) -> list[Word]:
    """EXPANSION REQUEST ID: the VMC's own manufacturer, serial, model and version."""
    ident = [*b"VMC000000000042sim-vmc     ", 0x01, 0x00]
    return f.vmc_command(address | f.EXPANSION, [f.EXPANSION_REQUEST_ID, *ident])


Kind = Literal["ack", "nak", "data", "bad_checksum", "malformed", "silence"]


@dataclass(frozen=True)
class Reply:
    """A peripheral's answer as the VMC reads it."""

    kind: Kind
    data: tuple[int, ...] = ()

    @property
    def code(self) -> int | None:
        return self.data[0] if self.data else None


def parse_reply(words: Sequence[Word]) -> Reply:
    """ACK/NAK alone with the mode bit, or data ending in a mode-bit CHK (Section 2.2)."""
    if not words:
        return Reply("silence")
    if len(words) == 1 and words[0][1]:
        byte = words[0][0]
        if byte == f.ACK:
            return Reply("ack")
        if byte == f.NAK:
            return Reply("nak")
        return Reply("malformed", (byte,))
    if not words[-1][1] or any(mode for _, mode in words[:-1]):
        return Reply("malformed", tuple(b for b, _ in words))
    data = tuple(b for b, _ in words[:-1])
    if f.checksum(data) != words[-1][0]:
        return Reply("bad_checksum", data)
    return Reply("data", data)


def reply_complete(words: Sequence[Word]) -> bool:
    """The peripheral's answer is over once a word carries the mode bit."""
    return bool(words) and words[-1][1]
