"""The cashless device's half of the MDB link layer (MDB/ICP 4.x, Section 2): the VMC's
words assembled into the blocks addressed to us, and our answers, each kept until the VMC
has ACKed it (sent again on RET). What a block means is device/vending/mdb/cashless.py's."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence

from device.vending.mdb import frames as f
from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.frames import Block, Word
from device.vending.mdb.state import MAX_BLOCK, SESSION_ANSWERS, Answer, Output

__all__ = ["Answers", "BlockAssembler"]


class BlockAssembler:
    """The VMC's words into blocks: an address byte (mode bit set) starts one, for us or
    for another peripheral; a half-received block is dropped and counted (`truncated`)."""

    def __init__(self, setup: ReaderSetup, stats: Counter[str]) -> None:
        self._setup = setup
        self._stats = stats
        self._partial: list[int] | None = None
        self._since = 0.0
        self.foreign = False  # inside a block for another peripheral

    @property
    def receiving(self) -> bool:
        return self._partial is not None

    def start(self, byte: int, now: float) -> bool:
        """An address byte: True when the block it starts is ours."""
        self.drop()
        self.foreign = (byte & f.ADDRESS_MASK) != self._setup.address
        if not self.foreign:
            self._partial, self._since = [byte], now
        return not self.foreign

    def add(self, byte: int) -> None:
        assert self._partial is not None
        self._partial.append(byte)

    def take(self) -> Block | Output:
        """The block once all of it is in; until then what to send now: nothing, or NAK
        for a block of a command we do not know."""
        data = self._partial
        assert data is not None
        length = f.expected_length(data)
        if length is not None:
            if len(data) < length + 1:
                return Output()
            self._partial = None
            return Block(tuple(data[:length]), data[length])
        # Unknown command: its length is unknown too. Take the first byte that is the
        # checksum of those before it as its CHK (MDB's own framing), and NAK it.
        if len(data) >= 2 and data[-1] == f.checksum(data[:-1]):
            self._partial = None
            self._stats["unknown_command"] += 1
            return Output(send=f.peripheral_nak())
        if len(data) > MAX_BLOCK:
            self._partial = None
            self._stats["malformed"] += 1
        return Output()

    def drop(self) -> None:
        if self._partial is not None:
            self._partial = None
            self._stats["truncated"] += 1

    def expire(self, now: float) -> None:
        """A block whose next byte is overdue is not coming whole."""
        if self._partial is not None and now - self._since > self._setup.block_gap_s:
            self.drop()


class Answers:
    """Our answers: the one on the wire, until the VMC ACKs, RETs or NAKs it, and the poll
    answers queued for the next POLLs, each kept until the VMC has ACKed it."""

    def __init__(self, stats: Counter[str]) -> None:
        self._stats = stats
        self._queue: deque[tuple[int, ...]] = deque([(f.JUST_RESET,)])  # power-up = reset
        self.sent: Answer | None = None  # our data answer waiting for the VMC's ACK

    def send(self, data: Sequence[int], polled: bool = False) -> Output:
        self.sent = Answer(tuple(data), polled)
        return Output(send=f.peripheral_answer(data))

    def poll(self) -> Output:
        """POLL: the first queued answer, or a plain ACK when there is none."""
        if not self._queue:
            return Output(send=f.peripheral_ack())
        return self.send(self._queue[0], polled=True)

    def reply(self, byte: int) -> tuple[list[Word], tuple[int, ...] | None]:
        """The VMC's reply to `sent`: what to send again (RET), and the poll answer it has
        now taken (ACK), which only then takes effect."""
        sent = self.sent
        assert sent is not None
        if byte == f.RET:
            self._stats["retransmit"] += 1
            return f.peripheral_answer(sent.data), None
        self.sent = None
        if byte != f.ACK:
            self._stats["vmc_nak" if byte == f.NAK else "garbage"] += 1
            return [], None
        if sent.polled and self._queue and self._queue[0] == sent.data:
            self._queue.popleft()
            return [], sent.data
        return [], None

    def abandon(self) -> None:
        """A new block from the VMC: an answer it did not ACK is given up (a poll answer
        stays queued for the next POLL)."""
        if self.sent is not None:
            self._stats["unacked_answer"] += 1
            self.sent = None

    def queue(self, data: tuple[int, ...]) -> None:
        self._queue.append(data)

    def queued(self, code: int) -> bool:
        return any(d[0] == code for d in self._queue)

    def drop(self, code: int) -> bool:
        kept = deque(d for d in self._queue if d[0] != code)
        dropped = len(kept) != len(self._queue)
        self._queue = kept
        return dropped

    def end_session(self) -> None:
        """The session's own answers go with it."""
        self._queue = deque(d for d in self._queue if d[0] not in SESSION_ANSWERS)

    def reset(self) -> None:
        self._queue = deque([(f.JUST_RESET,)])
