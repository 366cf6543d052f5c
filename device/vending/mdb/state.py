"""The cashless device's plain data: its states (Section 7.2), what one step produced, the
vend in progress and the answer waiting for the VMC's ACK."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from device.vending.mdb import frames as f
from device.vending.mdb.frames import Word
from device.vending.port import VendingEvent

MAX_BLOCK = 36  # longest block we accept (EXPANSION REQUEST ID is 31 + CHK)


class State(StrEnum):
    INACTIVE = "inactive"
    DISABLED = "disabled"
    ENABLED = "enabled"
    SESSION_IDLE = "session_idle"
    VEND = "vend"


IN_SESSION = (State.SESSION_IDLE, State.VEND)


@dataclass
class Output:
    """What one word (or a tick, or a terminal call) produced."""

    send: list[Word] = field(default_factory=list)
    events: list[VendingEvent] = field(default_factory=list)

    def __iadd__(self, other: Output) -> Output:
        self.send += other.send
        self.events += other.events
        return self


@dataclass
class Vend:
    item: int
    price: int  # minor units
    since: float
    decided: bool = False
    approved: bool = False
    delivered: bool = False  # the VMC has ACKed our VEND APPROVED


@dataclass(frozen=True)
class Answer:
    data: tuple[int, ...]
    polled: bool  # from the poll outbox: kept there until the VMC ACKs it


# Poll answers that belong to a session: dropped when it ends
SESSION_ANSWERS = (
    f.BEGIN_SESSION,
    f.SESSION_CANCEL_REQUEST,
    f.VEND_APPROVED,
    f.VEND_DENIED,
    f.REVALUE_DENIED,
)
