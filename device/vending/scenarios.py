"""Scripted VMC scenarios for `blinkpay mdb-sim`: what the machine does, what the reader
should answer on the bus and tell the terminal, and what it did.

Each scenario writes down its expected bus transcript (the answers the VMC reads) and the
terminal-side events before it runs, and passes only when both match exactly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from device.vending.mdb import frames as f
from device.vending.mdb import vmc
from device.vending.port import (
    ReaderEnabled,
    SessionEnded,
    SessionStarted,
    VendCancelled,
    VendFailed,
    VendRequested,
    VendSucceeded,
)
from device.vending.vmc_sim import Link

FUNDS = 2000  # what the terminal offers per session (minor units)
PRICE, ITEM = 150, 12

_NAMES = {
    f.JUST_RESET: "JUST RESET",
    f.READER_CONFIG_DATA: "READER CONFIG",
    f.BEGIN_SESSION: "BEGIN SESSION",
    f.SESSION_CANCEL_REQUEST: "SESSION CANCEL REQUEST",
    f.VEND_APPROVED: "VEND APPROVED",
    f.VEND_DENIED: "VEND DENIED",
    f.END_SESSION: "END SESSION",
    f.CANCELLED: "CANCELLED",
    f.PERIPHERAL_ID: "PERIPHERAL ID",
    f.CMD_OUT_OF_SEQUENCE: "OUT OF SEQUENCE",
}


def reply_name(reply: vmc.Reply) -> str:
    if reply.kind != "data":
        return reply.kind.upper() if reply.kind in ("ack", "nak") else reply.kind
    name = _NAMES.get(reply.data[0], f"{reply.data[0]:02X}H")
    if reply.data[0] in (f.BEGIN_SESSION, f.VEND_APPROVED):
        name += f" {f.read_u16(reply.data, 1)}"
    return name


@dataclass
class ScenarioResult:
    name: str
    expected: list[str]
    actual: list[str]
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.expected == self.actual

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "ok": self.ok,
            "expected": self.expected,
            "actual": self.actual,
            "stats": self.stats,
        }


# ---------------------------------------------------------------- VMC moves


def say(link: Link, block: list[f.Word]) -> str:
    return reply_name(link.vmc.transact(block))


def start_up(link: Link) -> list[str]:
    """The VMC's start-up sequence for a cashless device (Section 7.2)."""
    blocks = [
        vmc.reset(),
        vmc.poll(),
        vmc.setup_config(vmc_level=1),
        vmc.setup_prices(0xFFFF, 0),
        vmc.request_id(),
        vmc.reader(f.READER_ENABLE),
    ]
    out = [say(link, b) for b in blocks]
    link.wait_for(ReaderEnabled)
    link.log = []  # the scenarios below report what follows the start-up
    return out


START_UP = ["ACK", "JUST RESET", "READER CONFIG", "ACK", "PERIPHERAL ID", "ACK"]


def poll_until_data(link: Link, timeout_s: float = 2.0, interval_s: float = 0.002) -> str:
    """POLL until the reader has something to say (it answers ACK meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reply = link.vmc.transact(vmc.poll())
        if reply.kind != "ack":
            return reply_name(reply)
        time.sleep(interval_s)
    return "nothing"


def open_session(link: Link, funds: int = FUNDS) -> list[str]:
    link.reader.begin_session(funds)
    out = [poll_until_data(link)]
    link.wait_for(SessionStarted)
    return out


def select(link: Link, price: int = PRICE, item: int = ITEM) -> list[str]:
    """The customer presses a selection: VEND REQUEST, then poll for the verdict."""
    return [say(link, vmc.vend_request(price, item))]


def events(link: Link) -> list[str]:
    link.drain()
    return ["events: " + " ".join(type(e).__name__ for e in link.log)]


# ---------------------------------------------------------------- scenarios


def sale(link: Link) -> list[str]:
    out = start_up(link) + open_session(link) + select(link)
    if link.wait_for(VendRequested):
        link.reader.approve_vend(PRICE)
    out += [poll_until_data(link), say(link, vmc.vend_success(ITEM))]
    link.wait_for(VendSucceeded)
    out += [say(link, vmc.session_complete())]
    link.wait_for(SessionEnded)
    return out + events(link)


def jammed(link: Link) -> list[str]:
    out = start_up(link) + open_session(link) + select(link)
    if link.wait_for(VendRequested):
        link.reader.approve_vend(PRICE)
    out += [poll_until_data(link), say(link, vmc.vend_failure())]
    link.wait_for(VendFailed)
    out += [say(link, vmc.session_complete())]
    return out + events(link)


def cancel(link: Link) -> list[str]:
    out = start_up(link) + open_session(link) + select(link)
    link.wait_for(VendRequested)
    out += [say(link, vmc.vend_cancel())]
    link.wait_for(VendCancelled)
    out += [say(link, vmc.session_complete())]
    return out + events(link)


def bus_reset(link: Link) -> list[str]:
    out = start_up(link) + open_session(link) + select(link)
    link.wait_for(VendRequested)
    out += [say(link, vmc.reset()), say(link, vmc.poll())]
    return out + events(link)


def garbage(link: Link) -> list[str]:
    out = start_up(link)
    noise = bytes(random.Random(13).randrange(0xFF) for _ in range(64))  # no FF: no marks
    out.append(f"noise answered with {len(link.vmc.send_raw(noise))} words")
    out.append(say(link, [(0x12, True), (0x13, False)]))  # POLL with a bad CHK
    out.append(say(link, f.vmc_command(f.CASHLESS_1 | 0x06)))  # 16H: no such command
    out.append(say(link, vmc.poll()))
    return out


def silent_reader(link: Link) -> list[str]:
    out = start_up(link)
    link.silence(True)
    out += [say(link, vmc.poll()) for _ in range(3)]
    link.silence(False)  # the VMC gives up on it and resets it, as Section 7.2 allows
    out += [say(link, vmc.reset()), say(link, vmc.poll())]
    return out


def over_limit(link: Link, max_price: int) -> list[str]:
    out = start_up(link) + open_session(link, funds=max_price)
    out += [*select(link, price=max_price + 1), poll_until_data(link)]
    return out + events(link)


Scenario = tuple[str, Callable[[Link], list[str]], list[str]]


def scenarios(max_price: int, transport: str = "mdb-uart") -> list[Scenario]:
    """(name, script, expected) for every scenario; `max_price` as the reader is set up.
    A silent Pi behind a HAT still has the HAT's firmware ACKing the bus."""
    session = [*START_UP, f"BEGIN SESSION {FUNDS}", "ACK"]
    unanswered = "ACK" if transport == "mdb-hat" else "silence"
    return [
        ("start-up", start_up, START_UP),
        (
            "select and vend",
            sale,
            [
                *session,
                f"VEND APPROVED {PRICE}",
                "ACK",
                "END SESSION",
                "events: SessionStarted VendRequested VendSucceeded SessionEnded",
            ],
        ),
        (
            "product jammed",
            jammed,
            [
                *session,
                f"VEND APPROVED {PRICE}",
                "ACK",
                "END SESSION",
                "events: SessionStarted VendRequested VendFailed SessionEnded",
            ],
        ),
        (
            "customer cancels on the machine",
            cancel,
            [
                *session,
                "VEND DENIED",
                "END SESSION",
                "events: SessionStarted VendRequested VendCancelled SessionEnded",
            ],
        ),
        (
            "bus reset mid-session",
            bus_reset,
            [
                *session,
                "ACK",
                "JUST RESET",
                "events: SessionStarted VendRequested SessionCancelled ReaderDisabled",
            ],
        ),
        (
            "garbage on the bus",
            garbage,
            [*START_UP, "noise answered with 0 words", "NAK", "NAK", "ACK"],
        ),
        (
            "silent reader",
            silent_reader,
            [*START_UP, unanswered, unanswered, unanswered, "ACK", "JUST RESET"],
        ),
        (
            "price above the per-transaction limit",
            lambda link: over_limit(link, max_price),
            [
                *START_UP,
                f"BEGIN SESSION {max_price}",
                "ACK",
                "VEND DENIED",
                "events: SessionStarted",
            ],
        ),
    ]


def run_scenario(
    link: Link, script: Callable[[Link], list[str]], name: str, expected: list[str]
) -> ScenarioResult:
    link.reader.events()
    link.log = []
    before = link.reader.stats()
    actual = script(link)
    after = link.reader.stats()
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    return ScenarioResult(name, expected, actual, delta)
