"""The vending controller port: what the terminal hears from the machine, what it says.

Amounts are integers in minor units (cents), as everywhere in the terminal; an adapter
converts to and from its bus's own scaling. Every event carries `now`, the monotonic time
the adapter read when it happened.

The flow (MDB's, which the others follow): the machine enables the reader
(ReaderEnabled); the terminal offers a session with the funds it can authorise
(begin_session); the machine takes it (SessionStarted); the customer selects a product
(VendRequested); the terminal approves or denies it (approve_vend / deny_vend); the
machine reports the vend (VendSucceeded / VendFailed) and closes the session
(SessionEnded). Either side can stop early: cancel() / end_session() from the terminal,
VendCancelled / SessionCancelled / ReaderDisabled from the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ReaderEnabled:
    now: float


@dataclass(frozen=True)
class ReaderDisabled:
    """The machine disabled the reader (service mode, out of order) or reset the bus."""

    now: float
    reason: str = "vmc"  # "vmc" | "bus_reset"


@dataclass(frozen=True)
class SessionStarted:
    """The machine accepted the session the terminal offered with these funds."""

    now: float
    funds: int


@dataclass(frozen=True)
class VendRequested:
    """The customer selected `item`; the machine asks to be paid `price`."""

    now: float
    item: int
    price: int


@dataclass(frozen=True)
class VendCancelled:
    """The vend request was withdrawn before the terminal answered it: by the machine
    ("vmc", the customer pressed its cancel key) or because the machine's response-time
    limit ran out ("timeout")."""

    now: float
    reason: str


@dataclass(frozen=True)
class VendSucceeded:
    now: float
    item: int


@dataclass(frozen=True)
class VendFailed:
    """The machine took the approval but could not vend (product jammed): void the payment."""

    now: float
    item: int | None = None


@dataclass(frozen=True)
class SessionEnded:
    """The machine closed the session normally (after a vend, or after the terminal asked)."""

    now: float


@dataclass(frozen=True)
class SessionCancelled:
    """The session ended abnormally: "bus_reset", "reader_cancel", "vmc"."""

    now: float
    reason: str


@dataclass(frozen=True)
class CashSale:
    """The machine sold an item for cash (information, for the audit trail)."""

    now: float
    item: int
    price: int


VendingEvent = (
    ReaderEnabled
    | ReaderDisabled
    | SessionStarted
    | VendRequested
    | VendCancelled
    | VendSucceeded
    | VendFailed
    | SessionEnded
    | SessionCancelled
    | CashSale
)


class VendingController(Protocol):
    """What the terminal needs from a vending machine link, whatever carries it.

    Calls never block on the bus: they queue the answer the adapter gives the machine at
    its next opportunity (MDB: the next POLL). A call that makes no sense in the current
    state is refused (returns False) and counted, never raised.
    """

    name: str

    def start(self) -> None:
        """Open the link and start answering the machine."""

    def close(self) -> None: ...

    def events(self) -> list[VendingEvent]:
        """Everything that happened since the last call, oldest first."""

    def begin_session(self, funds: int) -> bool:
        """Offer the machine a session with up to `funds` to spend."""

    def approve_vend(self, amount: int) -> bool:
        """Pay the pending vend request (amount <= its price)."""

    def deny_vend(self) -> bool: ...

    def end_session(self) -> bool:
        """Ask the machine to close the session (no further vend in it)."""

    def cancel(self) -> bool:
        """The customer gave up: deny any pending vend and end the session."""

    def stats(self) -> dict[str, int]:
        """Counted protocol anomalies and refusals by reason (bad_checksum, ...)."""
