"""Stopping a long-running command on SIGTERM / SIGINT without a lock in the handler.

A Python signal handler runs in the main thread between two of its bytecodes. If the main
thread holds a lock at that instant (a queue's, or the one inside threading.Event.wait)
and the handler takes the same lock (queue.put, Event.set), the handler waits for a
thread that cannot go on until the handler returns: the process never stops. So the
handler only starts a thread, and that thread calls `stop` once the main thread lets go.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_handler(stop: Callable[[str], None]) -> Callable[[int, FrameType | None], None]:
    """A signal handler that calls stop(signal name) from a thread of its own."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        threading.Thread(
            target=stop, args=(signal.Signals(signum).name,), name="stop-on-signal", daemon=True
        ).start()

    return on_signal


@contextmanager
def stop_on_signals(
    stop: Callable[[str], None], signums: tuple[signal.Signals, ...] = STOP_SIGNALS
) -> Iterator[None]:
    """While inside, each of `signums` calls stop(signal name) (see stop_handler); the
    handlers in place before are put back on the way out."""
    handler = stop_handler(stop)
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def event_setter(event: threading.Event) -> Callable[[str], None]:
    """stop for stop_on_signals that sets `event` (the name of the signal is not needed)."""
    return lambda _name: event.set()
