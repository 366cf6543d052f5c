"""The MDB cashless device byte by byte (MDB/ICP 4.x, Section 7; framing Section 2.2).

Every expected answer is written out in hex; `!` marks the mode bit. Checksums are the
sum of the preceding bytes modulo 256.
"""

from __future__ import annotations

from device.vending.mdb import frames as f
from device.vending.mdb import vmc
from device.vending.mdb.cashless import CashlessDevice
from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.frames import words as w
from device.vending.mdb.loopback import Loopback as Bus
from device.vending.mdb.state import State
from device.vending.port import (
    CashSale,
    ReaderDisabled,
    ReaderEnabled,
    SessionCancelled,
    SessionEnded,
    SessionStarted,
    VendCancelled,
    VendFailed,
    VendRequested,
    VendSucceeded,
)

# ------------------------------------------------------------------ framing (Section 2.2)


def test_checksum_is_the_byte_sum_modulo_256() -> None:
    assert f.checksum([0x13, 0x00, 0x01, 0x2C, 0x00, 0x05]) == 0x45
    assert f.checksum([0xFF, 0xFF, 0x03]) == 0x01


def test_vmc_block_sets_the_mode_bit_on_the_address_only() -> None:
    assert vmc.vend_request(300, 5) == w("13! 00 01 2C 00 05 45")
    assert vmc.poll() == w("12! 12")


def test_peripheral_answer_sets_the_mode_bit_on_the_chk_only() -> None:
    assert f.peripheral_answer([0x05, 0x01, 0x2C]) == w("05 01 2C 32!")
    assert f.peripheral_ack() == w("00!")
    assert f.peripheral_nak() == w("FF!")


# ------------------------------------------------------------------ start-up (7.2, 7.4.1-7.4.3)


def test_power_up_answers_poll_with_just_reset(bus: Bus) -> None:
    assert bus.send(w("12! 12")) == w("00 00!")
    bus.send(w("00"))  # VMC ACK
    assert bus.send(w("12! 12")) == w("00!")  # nothing more to say: a lone ACK


def test_reset_is_acked_and_just_reset_follows(bus: Bus) -> None:
    bus.send(w("12! 12"))
    bus.send(w("00"))
    assert bus.send(w("10! 10")) == w("00!")
    assert bus.device.state == State.INACTIVE
    assert bus.send(w("12! 12")) == w("00 00!")


def test_setup_config_data_answers_reader_config(bus: Bus) -> None:
    # 11 00: VMC level 1, 0 columns, 0 rows, display info 0
    answer = bus.send(w("11! 00 01 00 00 00 12"))
    # 01 reader config, level 1, 1978H (EUR), scale 1, 2 decimals, 30 s, options 0
    assert answer == w("01 01 19 78 01 02 1E 00 B4!")
    assert bus.device.state == State.DISABLED


def test_setup_max_min_prices_is_acked_and_kept(bus: Bus) -> None:
    bus.command(vmc.setup_config())
    assert bus.send(w("11! 01 07 D0 00 0A F3")) == w("00!")
    assert (bus.device.vmc_max_price, bus.device.vmc_min_price) == (2000, 10)


def test_feature_level_is_the_lower_of_the_two(bus2: Bus) -> None:
    bus2.command(vmc.setup_config(vmc_level=1))
    assert bus2.device.level == 1
    bus2.command(vmc.setup_config(vmc_level=3))
    assert bus2.device.level == 2


def test_expansion_request_id_answers_peripheral_id(bus: Bus) -> None:
    reply = bus.command(vmc.request_id())
    assert reply.kind == "data" and reply.code == f.PERIPHERAL_ID
    assert bytes(reply.data[1:4]) == b"BLP" and len(reply.data) == 30
    assert reply.data[-2:] == (0x01, 0x00)


def test_peripheral_id_layout_byte_by_byte(bus: Bus) -> None:
    # 09H, manufacturer "BLP", serial "000000000001", model "blinkpay    ", version 01 00
    request = w(
        "17! 00 56 4D 43 30 30 30 30 30 30 30 30 30 30 34 32 "
        "73 69 6D 2D 76 6D 63 20 20 20 20 20 01 00 A0"
    )
    assert bus.send(request) == w(
        "09 42 4C 50 30 30 30 30 30 30 30 30 30 30 30 31 "
        "62 6C 69 6E 6B 70 61 79 20 20 20 20 01 00 03!"
    )


def test_reader_enable_and_disable(bus: Bus) -> None:
    bus.command(vmc.setup_config())
    assert bus.send(w("14! 01 15")) == w("00!")
    assert bus.device.state == State.ENABLED
    assert isinstance(bus.take()[0], ReaderEnabled)
    assert bus.send(w("14! 00 14")) == w("00!")
    assert bus.device.state == State.DISABLED
    assert bus.take() == [ReaderDisabled(bus.now)]


def test_reader_cancel_answers_cancelled_and_withdraws_a_session_offer(bus: Bus) -> None:
    bus.enabled()
    assert bus.device.begin_session(500, bus.now)
    assert bus.send(w("14! 02 16")) == w("08 08!")
    assert bus.take() == [SessionCancelled(bus.now, "reader_cancel")]
    bus.send(w("00"))
    assert bus.send(w("12! 12")) == w("00!")  # the BEGIN SESSION is gone


# ------------------------------------------------------------------ a sale (7.4.4-7.4.9)


def test_begin_session_goes_out_on_poll_and_starts_on_ack(bus: Bus) -> None:
    bus.enabled()
    assert bus.device.begin_session(1000, bus.now)
    assert bus.send(w("12! 12")) == w("03 03 E8 EE!")  # BEGIN SESSION, funds 03E8H = 1000
    assert bus.device.state == State.ENABLED  # not before the VMC has ACKed it
    bus.send(w("00"))
    assert bus.device.state == State.SESSION_IDLE
    assert bus.take() == [SessionStarted(bus.now, 1000)]


def test_level_2_begin_session_carries_media_type_and_data(bus2: Bus) -> None:
    bus2.enabled(level=2)
    bus2.device.begin_session(1000, bus2.now)
    assert bus2.send(w("12! 12")) == w("03 03 E8 00 00 00 00 00 00 00 EE!")


def test_a_whole_sale(bus: Bus) -> None:
    bus.in_session(funds=5000)
    assert bus.send(w("13! 00 01 2C 00 05 45")) == w("00!")  # VEND REQUEST 300 for item 5
    assert bus.take() == [VendRequested(bus.now, 5, 300)]
    assert bus.send(w("12! 12")) == w("00!")  # the terminal is still deciding
    assert bus.device.approve_vend(300, bus.now)
    assert bus.send(w("12! 12")) == w("05 01 2C 32!")  # VEND APPROVED 300
    bus.send(w("00"))
    assert bus.send(w("13! 02 00 05 1A")) == w("00!")  # VEND SUCCESS item 5
    assert bus.take() == [VendSucceeded(bus.now, 5)]
    assert bus.send(w("13! 04 17")) == w("07 07!")  # SESSION COMPLETE -> END SESSION
    bus.send(w("00"))
    assert bus.take() == [SessionEnded(bus.now)]
    assert bus.device.state == State.ENABLED


def test_vend_failure_after_approval_reports_the_item(bus: Bus) -> None:
    bus.in_session()
    bus.command(vmc.vend_request(250, 7))
    bus.device.approve_vend(250, bus.now)
    bus.command(vmc.poll())
    bus.take()
    assert bus.send(w("13! 03 16")) == w("00!")  # VEND FAILURE: product jammed
    assert bus.take() == [VendFailed(bus.now, 7)]
    assert bus.device.state == State.SESSION_IDLE


def test_terminal_denies_the_vend(bus: Bus) -> None:
    bus.in_session()
    bus.command(vmc.vend_request(250, 7))
    assert bus.device.deny_vend(bus.now)
    assert bus.send(w("12! 12")) == w("06 06!")
    bus.send(w("00"))
    assert bus.device.state == State.SESSION_IDLE


def test_vend_cancel_answers_vend_denied_at_once(bus: Bus) -> None:
    bus.in_session()
    bus.command(vmc.vend_request(250, 7))
    bus.take()
    assert bus.send(w("13! 01 14")) == w("06 06!")
    assert bus.take() == [VendCancelled(bus.now, "vmc")]
    assert bus.device.state == State.SESSION_IDLE


def test_vend_cancel_withdraws_an_approval_the_vmc_never_saw(bus: Bus) -> None:
    bus.in_session()
    bus.command(vmc.vend_request(250, 7))
    bus.device.approve_vend(250, bus.now)
    bus.take()
    assert bus.send(w("13! 01 14")) == w("06 06!")
    assert bus.take() == [VendCancelled(bus.now, "vmc")]  # the terminal must void it
    bus.send(w("00"))
    assert bus.send(w("12! 12")) == w("00!")


def test_terminal_ends_the_session_with_session_cancel_request(bus: Bus) -> None:
    bus.in_session()
    assert bus.device.end_session(bus.now)
    assert bus.send(w("12! 12")) == w("04 04!")
    bus.send(w("00"))
    assert bus.send(w("13! 04 17")) == w("07 07!")
    assert bus.take() == [SessionEnded(bus.now)]


def test_ending_a_session_whose_begin_is_on_the_wire(bus: Bus) -> None:
    """The terminal gives up just as the VMC reads BEGIN SESSION: the VMC's ACK still
    starts the session, and the reader asks to end it at the next POLL."""
    bus.enabled()
    bus.device.begin_session(1000, bus.now)
    assert bus.send(w("12! 12")) == w("03 03 E8 EE!")
    assert bus.device.end_session(bus.now)
    bus.send(w("00"))
    assert bus.take() == [SessionStarted(bus.now, 1000)]
    assert bus.send(w("12! 12")) == w("04 04!")


def test_cash_sale_is_acked_and_reported(bus: Bus) -> None:
    bus.enabled()
    assert bus.send(w("13! 05 00 96 00 03 B1")) == w("00!")
    assert bus.take() == [CashSale(bus.now, 3, 150)]


def test_scale_factor_converts_bus_values_to_minor_units() -> None:
    bus = Bus(CashlessDevice(ReaderSetup(scale_factor=5, max_price=5000)))
    bus.in_session(funds=1000)
    bus.command(vmc.vend_request(60, 1))  # 60 x 5 = 300 cents
    assert bus.take() == [VendRequested(bus.now, 1, 300)]
    bus.device.approve_vend(300, bus.now)
    assert vmc.parse_reply(bus.send(vmc.poll())).data == (f.VEND_APPROVED, 0, 60)


# ------------------------------------------------------------------ ACK, RET, NAK from the VMC


def test_ret_gets_the_same_answer_again(bus: Bus) -> None:
    bus.enabled()
    bus.device.begin_session(1000, bus.now)
    first = bus.send(w("12! 12"))
    assert bus.send(w("AA")) == first
    assert bus.device.stats["retransmit"] == 1


def test_an_unacknowledged_poll_answer_is_repeated_on_the_next_poll(bus: Bus) -> None:
    bus.enabled()
    bus.device.begin_session(1000, bus.now)
    first = bus.send(w("12! 12"))
    assert bus.send(w("12! 12")) == first  # no ACK came: still queued
    assert bus.device.stats["unacked_answer"] == 1
    bus.send(w("FF"))  # the VMC NAKs it: still queued
    assert bus.send(w("12! 12")) == first
    assert bus.device.stats["vmc_nak"] == 1
