"""Carrying MDB's 9-bit words over a Linux serial port (pyserial, imported lazily).

Receiving uses the kernel's own marking (termios PARMRK with INPCK, parity SPACE): a byte
whose 9th bit is set arrives as a parity error, which the tty layer delivers as the three
bytes FF 00 <byte>; a plain FF arrives doubled as FF FF. `MarkDecoder` turns that stream
back into words.

Sending differs by line:
- "parity" (a real UART through an MDB level shifter): the mode bit is the parity bit.
  Bytes without it go out with SPACE parity, the byte with it with MARK parity; the
  switch waits for the line to drain (tcsetattr TCSADRAIN), which costs one byte time.
- "stuffed" (a pseudo-terminal, which has no parity bit): the sender writes the same
  marking the receiving kernel would produce, FF 00 <byte> for a mode-bit byte and FF FF
  for a plain FF. The VMC simulator speaks it on the other end of the pty.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from device.vending.mdb.frames import Word

if TYPE_CHECKING:
    import serial

Framing = Literal["parity", "stuffed"]
_FF = 0xFF


def encode_marked(words: Iterable[Word]) -> bytes:
    """Words as PARMRK marks them: FF 00 b for a mode-bit byte, FF FF for a plain FF."""
    out = bytearray()
    for byte, mode in words:
        if mode:
            out += bytes((_FF, 0x00, byte))
        elif byte == _FF:
            out += bytes((_FF, _FF))
        else:
            out.append(byte)
    return bytes(out)


class MarkDecoder:
    """Streaming inverse of encode_marked(); marks may be split across reads."""

    def __init__(self) -> None:
        self._held = bytearray()
        self.invalid = 0  # FF followed by neither 00 nor FF: counted, the FF dropped

    def feed(self, data: bytes) -> list[Word]:
        buf = self._held + data
        out: list[Word] = []
        i = 0
        while i < len(buf):
            byte = buf[i]
            if byte != _FF:
                out.append((byte, False))
                i += 1
                continue
            if i + 1 >= len(buf):
                break  # wait for the rest of the mark
            nxt = buf[i + 1]
            if nxt == _FF:
                out.append((_FF, False))
                i += 2
            elif nxt == 0x00:
                if i + 2 >= len(buf):
                    break
                out.append((buf[i + 2], True))
                i += 3
            else:
                self.invalid += 1
                i += 1
        self._held = bytearray(buf[i:])
        return out


class NineBitSerial:
    """An MDB word port over a pyserial Serial (a UART, or a pty for the simulator)."""

    def __init__(self, ser: serial.Serial, framing: Framing) -> None:
        self.ser, self.framing = ser, framing
        self._decoder = MarkDecoder()
        if framing == "parity":
            _set_parity(ser, mark=False)

    @classmethod
    def open(cls, port: str, baud: int, framing: Framing) -> NineBitSerial:
        import serial

        ser = serial.Serial(port, baudrate=baud, bytesize=serial.EIGHTBITS, timeout=0.002)
        return cls(ser, framing)

    @property
    def invalid_marks(self) -> int:
        return self._decoder.invalid

    def read_words(self, timeout: float) -> list[Word]:
        # Straight from the descriptor: setting pyserial's timeout would reconfigure the
        # port and clear PARMRK and the stick parity.
        fd = self.ser.fileno()
        if not select.select([fd], [], [], timeout)[0]:
            return []
        try:
            data = os.read(fd, 256)
        except BlockingIOError:
            return []
        return self._decoder.feed(data)

    def write_words(self, words: Sequence[Word]) -> None:
        if self.framing == "stuffed":
            self.ser.write(encode_marked(words))
            return
        for mode, run in _runs(words):  # parity follows the mode bit, run by run
            _set_parity(self.ser, mark=mode)
            self.ser.write(bytes(run))
        _set_parity(self.ser, mark=False)  # listen with SPACE: mode-bit bytes get marked

    def close(self) -> None:
        self.ser.close()


def _runs(words: Sequence[Word]) -> list[tuple[bool, list[int]]]:
    runs: list[tuple[bool, list[int]]] = []
    for byte, mode in words:
        if runs and runs[-1][0] == mode:
            runs[-1][1].append(byte)
        else:
            runs.append((mode, [byte]))
    return runs


def _set_parity(ser: Any, mark: bool) -> None:
    """MARK or SPACE parity (CMSPAR) and PARMRK marking, straight through termios: pyserial
    clears PARMRK whenever it reconfigures, and TCSADRAIN lets the bytes already written
    leave with the old parity."""
    import termios

    fd = ser.fileno()
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    cmspar = getattr(termios, "CMSPAR", 0o10000000000)  # Linux value; not exported everywhere
    cflag |= termios.PARENB | cmspar
    cflag = cflag | termios.PARODD if mark else cflag & ~termios.PARODD
    iflag |= termios.INPCK | termios.PARMRK
    iflag &= ~(termios.IGNPAR | termios.ISTRIP)
    termios.tcsetattr(fd, termios.TCSADRAIN, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])
