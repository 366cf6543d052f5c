"""A vending machine controller (VMC) at the byte level, over a pseudo-terminal pair.

`open_uart_link()` makes a pty pair (os.openpty): the terminal's real MdbUartController
opens the slave end through pyserial, exactly as it opens /dev/serial0, with "stuffed"
framing (device/vending/ninebit.py: the PARMRK marking the kernel produces on a real
UART); `PtyVmc` drives the master end with the same marking. It measures each answer's
response time: from the VMC's last byte written to the first byte of the answer read.
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from device.vending.mdb import frames as f
from device.vending.mdb import vmc
from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.frames import Word
from device.vending.ninebit import MarkDecoder, NineBitSerial, encode_marked
from device.vending.port import VendingController, VendingEvent
from device.vending.uart import MdbUartController

REPLY_TIMEOUT_S = 0.05  # generous for a shared CI core; the 5 ms budget is measured
BUDGET_MS = 5.0  # MDB t-response (Section 2.5)


class PtyVmc:
    """The VMC's end of the pty: blocks out, answers in, timed."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._decoder = MarkDecoder()
        self.latencies_ms: list[float] = []
        self.silences = 0
        self.late = 0  # bytes that came after their answer's time was up: dropped

    def transact(self, block: list[Word], timeout: float = REPLY_TIMEOUT_S) -> vmc.Reply:
        """Send a block, read the answer (timed), ACK a data answer as a VMC does."""
        self._drop_late()
        os.write(self.fd, encode_marked(block))
        sent = time.perf_counter()
        words, first = self._read_answer(sent + timeout)
        if first is None:
            self.silences += 1
        else:
            self.latencies_ms.append((first - sent) * 1000.0)
        reply = vmc.parse_reply(words)
        if reply.kind == "data":
            os.write(self.fd, encode_marked([(f.ACK, False)]))
        return reply

    def send_raw(self, data: bytes) -> list[Word]:
        """Line noise or a hand-made frame; returns whatever came back within the timeout."""
        os.write(self.fd, data)
        words, _ = self._read_answer(time.perf_counter() + REPLY_TIMEOUT_S)
        return words

    def _drop_late(self) -> None:
        """An answer that missed its window must not pass for the next one's."""
        while select.select([self.fd], [], [], 0)[0]:
            self.late += len(os.read(self.fd, 256))
        self._decoder = MarkDecoder()

    def _read_answer(self, deadline: float) -> tuple[list[Word], float | None]:
        words: list[Word] = []
        first: float | None = None
        while not vmc.reply_complete(words):
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                break
            data = os.read(self.fd, 256)
            if first is None:
                first = time.perf_counter()
            words += self._decoder.feed(data)
        return words, first


class VmcSide(Protocol):
    """What a scenario needs from the VMC: blocks out, answers in, timings kept."""

    latencies_ms: list[float]
    silences: int

    def transact(self, block: list[Word], timeout: float = REPLY_TIMEOUT_S) -> vmc.Reply: ...
    def send_raw(self, data: bytes) -> list[Word]: ...


@dataclass
class Link:
    """A VMC and the terminal's controller joined by some transport."""

    transport: str
    vmc: VmcSide
    reader: VendingController
    close: Callable[[], None]
    silence: Callable[[bool], None]
    log: list[VendingEvent] = field(default_factory=list)

    def wait_for(self, kind: type, timeout: float = 2.0) -> VendingEvent | None:
        """The next terminal-side event of this kind (earlier ones are logged too)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.reader.events():
                self.log.append(event)
                if isinstance(event, kind):
                    return event
            time.sleep(0.0005)
        return None

    def drain(self, settle_s: float = 0.01) -> None:
        time.sleep(settle_s)
        self.log += self.reader.events()


def open_uart_link(
    setup: ReaderSetup | None = None, cpu: int | None = None, realtime_priority: int | None = None
) -> Link:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    reader = MdbUartController(
        lambda: NineBitSerial.open(path, 9600, "stuffed"),
        setup,
        cpu=cpu,
        realtime_priority=realtime_priority,
    )
    reader.start()

    def close() -> None:
        reader.close()
        os.close(master)
        os.close(slave)

    return Link("mdb-uart", PtyVmc(master), reader, close, reader.silence)


def bench_polls_apart(
    link: Link, polls: int, interval_s: float = 0.002, priority: int = 0
) -> Distribution:
    """bench_polls() with the VMC in a process of its own (device/vending/vmc_bench.py)."""
    assert isinstance(link.vmc, PtyVmc), "only the pty transport has a VMC to hand over"
    fd = link.vmc.fd
    args = [sys.executable, "-m", "device.vending.vmc_bench", str(fd), str(polls)]
    done = subprocess.run(
        [*args, str(interval_s), str(priority)],
        pass_fds=(fd,),
        capture_output=True,
        text=True,
        check=True,
        timeout=60 + polls * (interval_s + REPLY_TIMEOUT_S),
    )
    result = json.loads(done.stdout)
    link.vmc.silences += result["silences"]
    link.vmc.late += result["late"]
    return distribution(result["latencies_ms"], result["silences"])


@dataclass(frozen=True)
class Distribution:
    count: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    over_budget: int  # answers later than BUDGET_MS, plus the missed ones
    missed: int = 0  # no answer at all within REPLY_TIMEOUT_S

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "over_budget": self.over_budget,
            "missed": self.missed,
            "budget_ms": BUDGET_MS,
        }


def distribution(latencies_ms: list[float], missed: int = 0) -> Distribution:
    if not latencies_ms:
        return Distribution(0, None, None, None, missed, missed)
    ordered = sorted(latencies_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Distribution(
        len(ordered),
        round(statistics.median(ordered), 3),
        round(p99, 3),
        round(ordered[-1], 3),
        sum(1 for x in ordered if x > BUDGET_MS) + missed,
        missed,
    )


def bench_polls(link: Link, polls: int, interval_s: float = 0.002) -> Distribution:
    """POLL an idle, enabled reader `polls` times; the answer is a lone ACK each time."""
    start, silences = len(link.vmc.latencies_ms), link.vmc.silences
    for _ in range(polls):
        link.vmc.transact(vmc.poll())
        time.sleep(interval_s)  # a VMC polls every few ms to a few hundred ms
    return distribution(link.vmc.latencies_ms[start:], link.vmc.silences - silences)
