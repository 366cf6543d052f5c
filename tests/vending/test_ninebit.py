"""The mode bit over a byte stream: the kernel's PARMRK marking, both ways."""

from __future__ import annotations

import os
import termios

from device.vending.mdb import vmc
from device.vending.mdb.frames import words as w
from device.vending.ninebit import MarkDecoder, NineBitSerial, _runs, encode_marked

CMSPAR = getattr(termios, "CMSPAR", 0o10000000000)


def test_mode_bit_bytes_are_marked_and_plain_ff_is_doubled() -> None:
    assert encode_marked(w("12! 12")) == bytes.fromhex("FF0012 12")
    assert encode_marked(w("05 FF FF!")) == bytes.fromhex("05 FFFF FF00FF")


def test_decoder_inverts_the_encoder_across_split_reads() -> None:
    block = w("13! 00 FF FF 00 05 45") + w("FF!") + w("00!")
    data = encode_marked(block)
    for cut in range(len(data) + 1):
        decoder = MarkDecoder()
        assert decoder.feed(data[:cut]) + decoder.feed(data[cut:]) == block


def test_an_invalid_mark_is_counted_and_dropped() -> None:
    decoder = MarkDecoder()
    assert decoder.feed(bytes.fromhex("FF 41 12")) == w("41 12")
    assert decoder.invalid == 1


def test_parity_framing_splits_blocks_into_runs_of_one_mode() -> None:
    assert _runs(w("05 01 2C 32!")) == [(False, [0x05, 0x01, 0x2C]), (True, [0x32])]


def test_stuffed_serial_over_a_pty_carries_words() -> None:
    master, slave = os.openpty()
    port = NineBitSerial.open(os.ttyname(slave), 9600, "stuffed")
    try:
        os.write(master, encode_marked(vmc.poll()))
        got = []
        for _ in range(50):
            got += port.read_words(0.01)
            if len(got) == 2:
                break
        assert got == vmc.poll()
        port.write_words(w("00!"))
        assert os.read(master, 16) == bytes.fromhex("FF0000")
    finally:
        port.close()
        os.close(master)
        os.close(slave)


def test_reading_keeps_the_parity_and_marking_set_up() -> None:
    """pyserial reconfigures the port (clearing PARMRK) whenever its timeout is set: the
    read path must not touch it."""
    master, slave = os.openpty()
    port = NineBitSerial.open(os.ttyname(slave), 9600, "parity")
    try:
        for _ in range(3):
            port.read_words(0.001)
        iflag, _, cflag, *_ = termios.tcgetattr(port.ser.fileno())
        assert iflag & termios.PARMRK and iflag & termios.INPCK
        # A pty forces PARENB off (no parity on a pseudo line); stick parity stays set.
        assert cflag & CMSPAR and not cflag & termios.PARODD  # SPACE: listening
        port.write_words(w("00!"))
        assert os.read(master, 16) == bytes.fromhex("00")  # the mode bit is the parity bit
        cflag = termios.tcgetattr(port.ser.fileno())[2]
        assert not cflag & termios.PARODD  # back to SPACE after the mode-bit byte
    finally:
        port.close()
        os.close(master)
        os.close(slave)
