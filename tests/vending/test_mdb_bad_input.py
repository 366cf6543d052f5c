"""Bad input gets the protocol's own answer and a counted reason, never an exception.

MDB/ICP 4.x: NAK for a corrupted or unknown block (Section 2.2), VEND DENIED for a vend
the reader will not pay (7.4.5), CMD OUT OF SEQUENCE at level 2 (7.4.4), RESET from the
VMC puts everything back to INACTIVE (7.4.1).
"""

from __future__ import annotations

import random

from device.vending.mdb import frames as f
from device.vending.mdb import vmc
from device.vending.mdb.frames import words as w
from device.vending.mdb.loopback import Loopback as Bus
from device.vending.mdb.state import State
from device.vending.port import ReaderDisabled, SessionCancelled, VendCancelled, VendSucceeded


def test_bad_checksum_is_naked_and_counted(bus: Bus) -> None:
    assert bus.send(w("12! 13")) == w("FF!")
    assert bus.send(w("13! 00 01 2C 00 05 46")) == w("FF!")
    assert bus.device.stats["bad_checksum"] == 2


def test_unknown_subcommand_is_naked_at_its_chk(bus: Bus) -> None:
    bus.enabled()
    assert bus.send(w("13! 09 1C")) == w("FF!")  # VEND 09H does not exist
    assert bus.send(w("17! 42 59")) == w("FF!")  # EXPANSION 42H neither
    assert bus.device.stats["unknown_command"] == 2


def test_revalue_is_unknown_at_level_1(bus: Bus) -> None:
    bus.enabled()
    assert bus.send(w("15! 01 16")) == w("FF!")
    assert bus.device.stats["unknown_command"] == 1


def test_level_2_refuses_revalue(bus2: Bus) -> None:
    bus2.enabled(level=2)
    assert bus2.send(w("15! 01 16")) == w("0F 00 00 0F!")  # REVALUE LIMIT AMOUNT 0
    bus2.send(w("00"))
    assert bus2.send(w("15! 00 00 64 79")) == w("0B 0B!")  # REVALUE outside a session


def test_level_2_revalue_in_a_session_is_denied_on_poll(bus2: Bus) -> None:
    bus2.enabled(level=2)
    bus2.device.begin_session(1000, bus2.now)
    bus2.command(vmc.poll())
    assert bus2.send(w("15! 00 00 64 79")) == w("00!")  # REVALUE REQUEST 100
    assert bus2.send(w("12! 12")) == w("0E 0E!")  # REVALUE DENIED
    assert bus2.device.stats["revalue_refused"] == 1


def test_blocks_for_other_peripherals_are_ignored(bus: Bus) -> None:
    bus.enabled()
    before = dict(bus.device.stats)
    assert bus.send(w("0B! 0B")) == []  # coin changer POLL
    assert bus.send(w("33! 33")) == []  # bill validator POLL
    assert bus.send(w("62! 62")) == []  # cashless #2 POLL
    assert dict(bus.device.stats) == before


def test_garbage_between_blocks_is_counted_and_not_answered(bus: Bus) -> None:
    bus.enabled()
    assert bus.send(w("55 AA 01 FF")) == []
    assert bus.device.stats["garbage"] == 4
    assert bus.send(w("12! 12")) == w("00!")  # and the next block is understood


def test_a_block_cut_short_by_the_next_address_is_dropped(bus: Bus) -> None:
    bus.enabled()
    assert bus.send(w("13! 00 01")) == []
    assert bus.send(w("12! 12")) == w("00!")
    assert bus.device.stats["truncated"] == 1


def test_a_block_cut_short_by_silence_is_dropped_on_tick(bus: Bus) -> None:
    bus.enabled()
    bus.send(w("13! 00 01"))
    bus.tick(1.0)
    assert bus.device.stats["truncated"] == 1
    assert bus.send(w("2C 00 05 45")) == []  # the rest, too late: garbage
    assert bus.device.stats["garbage"] == 4


def test_an_endless_unknown_block_is_dropped_as_malformed(bus: Bus) -> None:
    bus.enabled()
    assert bus.send([(0x16, True)] + [(0x01, False)] * 40) == []
    assert bus.device.stats["malformed"] == 1


def test_vend_request_outside_a_session_is_denied_at_level_1(bus: Bus) -> None:
    bus.enabled()
    assert bus.send(w("13! 00 01 2C 00 05 45")) == w("06 06!")
    assert bus.device.stats["out_of_sequence"] == 1
    assert bus.take() == []


def test_out_of_sequence_at_level_2_answers_cmd_out_of_sequence(bus2: Bus) -> None:
    bus2.enabled(level=2)
    assert bus2.send(w("13! 00 01 2C 00 05 45")) == w("0B 0B!")
    bus2.send(w("00"))
    assert bus2.send(w("13! 02 00 05 1A")) == w("0B 0B!")  # VEND SUCCESS with no vend


def test_commands_before_setup_are_out_of_sequence(bus: Bus) -> None:
    assert bus.send(w("14! 01 15")) == w("FF!")  # READER ENABLE while INACTIVE
    assert bus.device.state == State.INACTIVE
    assert bus.device.stats["out_of_sequence"] == 1


def test_vend_success_without_approval_is_refused(bus: Bus) -> None:
    bus.in_session()
    bus.command(vmc.vend_request(100, 1))
    assert bus.send(w("13! 02 00 01 16")) == w("FF!")
    assert bus.device.state == State.VEND


def test_price_above_the_terminal_maximum_is_denied(bus: Bus) -> None:
    bus.in_session(funds=9000)  # funds are capped at max_price = 5000
    assert bus.send(w("13! 00 13 89 00 01 B0")) == w("00!")  # 5001
    assert bus.take() == []  # the terminal is never asked
    assert bus.send(w("12! 12")) == w("06 06!")
    bus.send(w("00"))
    assert bus.device.state == State.SESSION_IDLE
    assert bus.device.stats["over_max_price"] == 1


def test_price_above_the_session_funds_is_denied(bus: Bus) -> None:
    bus.in_session(funds=200)
    bus.command(vmc.vend_request(201, 1))
    assert vmc.parse_reply(bus.send(vmc.poll())).code == f.VEND_DENIED


def test_bus_reset_mid_session_cancels_it(bus: Bus) -> None:
    bus.in_session()
    bus.command(vmc.vend_request(100, 1))
    bus.take()
    assert bus.send(w("10! 10")) == w("00!")
    assert bus.take() == [
        SessionCancelled(bus.now, "bus_reset"),
        ReaderDisabled(bus.now, "bus_reset"),
    ]
    assert bus.device.state == State.INACTIVE
    assert bus.send(w("12! 12")) == w("00 00!")  # JUST RESET
    assert not bus.device.approve_vend(100, bus.now)  # the vend is gone
    assert bus.device.stats["refused_approve_vend"] == 1


def test_a_bus_reset_after_the_vmc_took_the_approval_is_a_vend(bus: Bus) -> None:
    """MDB's RESET rule: in the Vend state, after VEND APPROVED reached the VMC and before
    VEND SUCCESS/FAILURE, a RESET counts as a successful vend (it may have dispensed)."""
    bus.in_session()
    bus.command(vmc.vend_request(100, 7))
    bus.take()
    assert bus.device.approve_vend(100, bus.now)
    assert vmc.parse_reply(bus.send(vmc.poll())).code == f.VEND_APPROVED
    bus.send(w("00"))  # the VMC ACKs it: from now on it may dispense
    assert bus.send(w("10! 10")) == w("00!")
    assert bus.take() == [
        VendSucceeded(bus.now, 7),
        SessionCancelled(bus.now, "bus_reset"),
        ReaderDisabled(bus.now, "bus_reset"),
    ]
    assert bus.device.stats["reset_after_approval"] == 1


def test_a_bus_reset_before_the_vmc_took_the_approval_withdraws_it(bus: Bus) -> None:
    bus.in_session()
    bus.command(vmc.vend_request(100, 7))
    bus.take()
    assert bus.device.approve_vend(100, bus.now)
    assert vmc.parse_reply(bus.send(vmc.poll())).code == f.VEND_APPROVED  # never ACKed
    assert bus.send(w("10! 10")) == w("00!")
    assert bus.take() == [  # no vend: the shell voids the approved row
        SessionCancelled(bus.now, "bus_reset"),
        ReaderDisabled(bus.now, "bus_reset"),
    ]
    assert bus.device.stats["reset_after_approval"] == 0


def test_an_unanswered_vend_is_denied_before_the_vmc_gives_up(bus: Bus) -> None:
    bus.in_session()
    bus.command(vmc.vend_request(100, 1))
    bus.take()
    bus.tick(bus.device.setup.max_response_time_s - 0.5)
    assert bus.take() == [VendCancelled(bus.now, "timeout")]
    assert bus.send(w("12! 12")) == w("06 06!")
    assert bus.device.stats["approval_timeout"] == 1


def test_terminal_calls_out_of_place_are_refused_and_counted(bus: Bus) -> None:
    assert not bus.device.begin_session(100, bus.now)  # INACTIVE
    assert not bus.device.approve_vend(100, bus.now)
    assert not bus.device.deny_vend(bus.now)
    assert not bus.device.end_session(bus.now)
    bus.in_session()
    bus.command(vmc.vend_request(100, 1))
    assert not bus.device.approve_vend(101, bus.now)  # more than the price
    assert bus.device.stats["refused_approve_vend"] == 2


def test_random_noise_never_raises() -> None:
    from device.vending.mdb.cashless import CashlessDevice

    rng = random.Random(13)
    device = CashlessDevice()
    for i in range(20_000):
        word = (rng.randrange(256), rng.random() < 0.2)
        device.receive(word, i * 0.001)
        if i % 97 == 0:
            device.tick(i * 0.001)
    assert sum(device.stats.values()) > 0
