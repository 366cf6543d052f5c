"""The MDB cashless device #1 as a pure state machine (MDB/ICP 4.x, Section 7).

Words and the time go in (`receive`, `tick`), words to send and port events come out.
States (Section 7.2): INACTIVE -> (SETUP config) DISABLED -> (READER ENABLE) ENABLED ->
(BEGIN SESSION taken) SESSION_IDLE -> (VEND REQUEST) VEND -> (VEND SUCCESS / FAILURE)
SESSION_IDLE -> (SESSION COMPLETE) ENABLED. Bad input never raises: it gets the
protocol's own answer (NAK, VEND DENIED, CMD OUT OF SEQUENCE) and a counted reason in
`stats`. The link layer under it (blocks in, answers kept until ACKed) is
device/vending/mdb/link.py.
"""

from __future__ import annotations

from collections import Counter

from device.vending.mdb import frames as f
from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.frames import Block, Word
from device.vending.mdb.link import Answers, BlockAssembler
from device.vending.mdb.state import IN_SESSION, Output, State, Vend
from device.vending.port import (
    CashSale,
    ReaderDisabled,
    ReaderEnabled,
    SessionCancelled,
    SessionEnded,
    SessionStarted,
    VendCancelled,
    VendFailed,
    VendingEvent,
    VendRequested,
    VendSucceeded,
)


class CashlessDevice:
    def __init__(self, setup: ReaderSetup | None = None) -> None:
        self.setup = setup or ReaderSetup()
        self.stats: Counter[str] = Counter()
        self.state = State.INACTIVE
        self.vmc_level = 1
        self.vmc_max_price: int | None = None  # minor units, from SETUP max/min prices
        self.vmc_min_price: int | None = None
        self._blocks = BlockAssembler(self.setup, self.stats)
        self._answers = Answers(self.stats)
        self._vend: Vend | None = None
        self._funds = 0
        self._disable_pending = False
        self._end_when_started = False  # ended while its BEGIN SESSION was on the wire

    # ------------------------------------------------------------------ the bus side

    @property
    def level(self) -> int:
        """The feature level both sides speak: the lower of the two (Section 7.4.2)."""
        return min(self.setup.feature_level, self.vmc_level)

    def receive(self, word: Word, now: float) -> Output:
        byte, mode = word
        if mode:
            # A new address byte: whatever was half-received or unacknowledged is given up.
            ours = self._blocks.start(byte, now)
            self._answers.abandon()
            return self._take_block(now) if ours else Output()
        if self._blocks.receiving:
            self._blocks.add(byte)
            return self._take_block(now)
        if self._blocks.foreign:
            return Output()  # data of a block for another peripheral
        if self._answers.sent is not None:
            return self._vmc_reply(byte, now)
        self.stats["garbage"] += 1
        return Output()

    def tick(self, now: float) -> Output:
        """Timeouts: a half-received block, a vend request nobody answered in time."""
        out = Output()
        self._blocks.expire(now)
        vend = self._vend
        limit = max(1.0, self.setup.max_response_time_s - 1.0)  # answer before the VMC gives up
        if self.state == State.VEND and vend and not vend.decided and now - vend.since > limit:
            self.stats["approval_timeout"] += 1
            self._decide(False)
            out.events.append(VendCancelled(now, "timeout"))
        return out

    # ------------------------------------------------------------------ the terminal side

    def begin_session(self, funds: int, now: float) -> bool:
        if self.state != State.ENABLED or self._answers.queued(f.BEGIN_SESSION):
            return self._refuse("begin_session")
        self._funds = min(funds, self.setup.max_price)
        scaled = min(self.setup.to_scaled(self._funds), 0xFFFE)  # FFFFH would mean "unknown"
        data = [f.BEGIN_SESSION, *f.u16(scaled)]
        if self.level >= 2:  # payment media ID (4), payment type (1), payment data (2)
            data += [0, 0, 0, 0, 0x00, 0, 0]
        self._answers.queue(tuple(data))
        return True

    def approve_vend(self, amount: int, now: float) -> bool:
        vend = self._vend
        if self.state != State.VEND or vend is None or vend.decided or amount > vend.price:
            return self._refuse("approve_vend")
        if amount < 0 or amount % self.setup.scale_factor:
            return self._refuse("approve_vend")
        self._decide(True, amount)
        return True

    def deny_vend(self, now: float) -> bool:
        vend = self._vend
        if self.state != State.VEND or vend is None or vend.decided:
            return self._refuse("deny_vend")
        self._decide(False)
        return True

    def end_session(self, now: float) -> bool:
        """SESSION CANCEL REQUEST on the next POLL; the VMC answers with SESSION COMPLETE."""
        sent = self._answers.sent
        if sent is not None and sent.data[0] == f.BEGIN_SESSION:
            self._end_when_started = True  # the VMC may be ACKing it right now
            return True
        if self._answers.drop(f.BEGIN_SESSION):
            return True  # offered but not yet taken: withdraw the offer
        if self.state not in IN_SESSION or self._answers.queued(f.SESSION_CANCEL_REQUEST):
            return self._refuse("end_session")
        if self._vend is not None and not self._vend.decided:
            self._decide(False)
        self._answers.queue((f.SESSION_CANCEL_REQUEST,))
        return True

    def cancel(self, now: float) -> bool:
        return self.end_session(now)

    # ------------------------------------------------------------------ the link layer

    def _take_block(self, now: float) -> Output:
        got = self._blocks.take()
        return self._on_block(got, now) if isinstance(got, Block) else got

    def _vmc_reply(self, byte: int, now: float) -> Output:
        send, taken = self._answers.reply(byte)
        return Output(send=send, events=[] if taken is None else self._delivered(taken, now))

    # ------------------------------------------------------------------ commands

    def _on_block(self, block: Block, now: float) -> Output:
        if not block.ok:
            self.stats["bad_checksum"] += 1
            return Output(send=f.peripheral_nak())
        match block.command:
            case f.RESET:
                return self._reset(now)
            case f.SETUP:
                return self._setup(block)
            case f.POLL:
                return self._answers.poll()
            case f.VEND:
                return self._vend_command(block, now)
            case f.READER:
                return self._reader(block, now)
            case f.REVALUE if self.level >= 2:
                return self._revalue(block)
            case f.EXPANSION if block.subcommand == f.EXPANSION_REQUEST_ID:
                return self._answers.send([f.PERIPHERAL_ID, *self.setup.identity()])
        self.stats["unknown_command"] += 1
        return Output(send=f.peripheral_nak())

    def _reset(self, now: float) -> Output:
        """RESET (7.4.1): back to INACTIVE; JUST RESET on the next POLL.

        A RESET in the Vend state after the VMC took our VEND APPROVED (it ACKed it) and
        before it sent VEND SUCCESS or VEND FAILURE counts as a successful vend, as MDB's
        RESET rule has the reader do: the machine may well have dispensed on the approval,
        so the payment stands (docs/vending.md, "A bus RESET after VEND APPROVED"). An
        approval the VMC never took is withdrawn instead (the session's cancel voids it)."""
        self.stats["reset"] += 1
        out = Output(send=f.peripheral_ack())
        vend = self._vend
        if self.state == State.VEND and vend is not None and vend.approved and vend.delivered:
            self.stats["reset_after_approval"] += 1
            out.events.append(VendSucceeded(now, vend.item))
        if self.state in IN_SESSION:
            out.events.append(SessionCancelled(now, "bus_reset"))
        if self.state != State.INACTIVE and self.state != State.DISABLED:
            out.events.append(ReaderDisabled(now, "bus_reset"))
        self.state, self._vend, self._disable_pending = State.INACTIVE, None, False
        self._end_when_started = False
        self._answers.reset()
        return out

    def _setup(self, block: Block) -> Output:
        d = block.data
        if self.state in IN_SESSION:
            return self._out_of_sequence()
        if block.subcommand == f.SETUP_CONFIG:
            self.vmc_level = max(1, d[2])
            if self.state == State.INACTIVE:
                self.state = State.DISABLED
            s = self.setup
            return self._answers.send(
                [
                    f.READER_CONFIG_DATA,
                    s.feature_level,
                    *f.u16(s.currency_code),
                    s.scale_factor,
                    s.decimal_places,
                    s.max_response_time_s,
                    s.misc_options,
                ]
            )
        self.vmc_max_price = self.setup.to_minor(f.read_u16(d, 2))
        self.vmc_min_price = self.setup.to_minor(f.read_u16(d, 4))
        return Output(send=f.peripheral_ack())

    def _vend_command(self, block: Block, now: float) -> Output:
        sub, d = block.subcommand, block.data
        vend = self._vend
        if sub == f.VEND_REQUEST:
            return self._vend_request(f.read_u16(d, 4), self.setup.to_minor(f.read_u16(d, 2)), now)
        if sub == f.VEND_CANCEL and self.state == State.VEND and vend and not vend.delivered:
            # VEND CANCEL (7.4.6): answered at once with VEND DENIED; an approval still
            # queued is withdrawn (the machine never saw it: the terminal must void it).
            self._vend, self.state = None, State.SESSION_IDLE
            self._answers.drop(f.VEND_APPROVED)
            self._answers.drop(f.VEND_DENIED)
            out = self._answers.send([f.VEND_DENIED])
            if not vend.decided or vend.approved:
                out.events.append(VendCancelled(now, "vmc"))
            return out
        if sub in (f.VEND_SUCCESS, f.VEND_FAILURE) and self.state == State.VEND and vend:
            return self._vend_outcome(sub, d, vend, now)
        if sub == f.SESSION_COMPLETE and self.state in IN_SESSION:
            return self._session_complete(now)
        if sub == f.CASH_SALE and self.state != State.INACTIVE:
            price = self.setup.to_minor(f.read_u16(d, 2))
            return Output(send=f.peripheral_ack(), events=[CashSale(now, f.read_u16(d, 4), price)])
        return self._out_of_sequence(vend_request=False)

    def _vend_request(self, item: int, price: int, now: float) -> Output:
        if self.state != State.SESSION_IDLE:
            return self._out_of_sequence(vend_request=True)
        self.state = State.VEND
        self._vend = Vend(item, price, now)
        if price > min(self.setup.max_price, self._funds):
            self.stats["over_max_price"] += 1
            self._decide(False)
            return Output(send=f.peripheral_ack())
        return Output(send=f.peripheral_ack(), events=[VendRequested(now, item, price)])

    def _vend_outcome(self, sub: int, d: tuple[int, ...], vend: Vend, now: float) -> Output:
        """VEND SUCCESS / VEND FAILURE (7.4.7, 7.4.8): only after an approval."""
        if not vend.approved:
            return self._out_of_sequence()
        self._vend, self.state = None, State.SESSION_IDLE
        if sub == f.VEND_SUCCESS:
            return Output(send=f.peripheral_ack(), events=[VendSucceeded(now, f.read_u16(d, 2))])
        return Output(send=f.peripheral_ack(), events=[VendFailed(now, vend.item)])

    def _session_complete(self, now: float) -> Output:
        """SESSION COMPLETE (7.4.9): answered at once with END SESSION."""
        vend = self._vend
        events: list[VendingEvent] = []
        if vend is not None and not vend.decided:
            events.append(VendCancelled(now, "vmc"))
        self._vend = None
        self._answers.end_session()
        self.state = State.DISABLED if self._disable_pending else State.ENABLED
        self._disable_pending = False
        out = self._answers.send([f.END_SESSION])
        out.events += [*events, SessionEnded(now)]
        return out

    def _reader(self, block: Block, now: float) -> Output:
        sub = block.subcommand
        if self.state == State.INACTIVE:
            return self._out_of_sequence()
        if sub == f.READER_ENABLE:
            if self.state == State.DISABLED:
                self.state = State.ENABLED
                return Output(send=f.peripheral_ack(), events=[ReaderEnabled(now)])
            return Output(send=f.peripheral_ack())
        if sub == f.READER_DISABLE:
            events: list[VendingEvent] = []
            if self.state == State.ENABLED:
                self.state = State.DISABLED
                self._answers.drop(f.BEGIN_SESSION)
                events.append(ReaderDisabled(now))
            elif self.state in IN_SESSION:
                self._disable_pending = True  # takes effect when the session ends
                events.append(ReaderDisabled(now))
            return Output(send=f.peripheral_ack(), events=events)
        # READER CANCEL (7.4.14): stop what the reader was doing, answer CANCELLED
        out = self._answers.send([f.CANCELLED])
        if self._answers.drop(f.BEGIN_SESSION):
            out.events.append(SessionCancelled(now, "reader_cancel"))
        return out

    def _revalue(self, block: Block) -> Output:
        """Level 2: the terminal does not put money back on an account from the machine."""
        if block.subcommand == f.REVALUE_LIMIT:
            return self._answers.send([f.REVALUE_LIMIT_AMOUNT, 0, 0])
        self.stats["revalue_refused"] += 1
        if self.state not in IN_SESSION:
            return self._out_of_sequence()
        self._answers.queue((f.REVALUE_DENIED,))
        return Output(send=f.peripheral_ack())

    # ------------------------------------------------------------------ helpers

    def _out_of_sequence(self, vend_request: bool = False) -> Output:
        """Level 2+: CMD OUT OF SEQUENCE at once. Level 1 has no such answer: a misplaced
        VEND REQUEST is refused with VEND DENIED, anything else with NAK."""
        self.stats["out_of_sequence"] += 1
        if self.level >= 2:
            return self._answers.send([f.CMD_OUT_OF_SEQUENCE])
        if vend_request:
            return self._answers.send([f.VEND_DENIED])
        return Output(send=f.peripheral_nak())

    def _decide(self, approved: bool, amount: int = 0) -> None:
        vend = self._vend
        assert vend is not None
        vend.decided, vend.approved = True, approved
        if approved:
            self._answers.queue((f.VEND_APPROVED, *f.u16(self.setup.to_scaled(amount))))
        else:
            self._answers.queue((f.VEND_DENIED,))

    def _delivered(self, data: tuple[int, ...], now: float) -> list[VendingEvent]:
        """The VMC ACKed a poll answer: only now has it taken effect on its side."""
        if data[0] == f.BEGIN_SESSION and self.state == State.ENABLED:
            self.state = State.SESSION_IDLE
            if self._end_when_started:
                self._end_when_started = False
                self._answers.queue((f.SESSION_CANCEL_REQUEST,))
            return [SessionStarted(now, self._funds)]
        if data[0] == f.VEND_DENIED and self.state == State.VEND:
            self.state, self._vend = State.SESSION_IDLE, None
        if data[0] == f.VEND_APPROVED and self._vend is not None:
            self._vend.delivered = True
        return []

    def _refuse(self, call: str) -> bool:
        self.stats[f"refused_{call}"] += 1
        return False
