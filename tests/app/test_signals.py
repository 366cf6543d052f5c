"""SIGTERM / SIGINT stop a long-running command through device.signals: the stop runs in a
thread of its own (a handler that took a lock the interrupted main thread holds would never
return), and the handlers before are put back."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from device.signals import event_setter, stop_handler, stop_on_signals

# A process that waits on an Event the way `blinkpay-host serve` and `blinkpay net` do,
# many short waits so that signals land while the main thread is inside Event.wait's lock.
WAITER = """
import signal, threading
from device.signals import event_setter, stop_on_signals
for signum in (signal.SIGTERM, signal.SIGINT):  # what the block puts back: late signals
    signal.signal(signum, signal.SIG_IGN)       # then cannot kill it before it prints
stop = threading.Event()
with stop_on_signals(event_setter(stop)):
    print("ready", flush=True)
    while not stop.wait(0.0005):
        pass
print("stopped", flush=True)
"""


def test_the_stop_runs_outside_the_handler_and_names_the_signal() -> None:
    called: list[tuple[str, str]] = []
    done = threading.Event()

    def stop(name: str) -> None:
        called.append((name, threading.current_thread().name))
        done.set()

    stop_handler(stop)(signal.SIGTERM, None)
    assert done.wait(30)
    assert called == [("SIGTERM", "stop-on-signal")]


def test_the_previous_handlers_are_back_after_the_block() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop = threading.Event()
    with stop_on_signals(event_setter(stop)):
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt: it asks for a stop
        assert stop.wait(30)
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_process_waiting_on_an_event_stops_on_the_signal(signum: signal.Signals) -> None:
    process = subprocess.Popen([sys.executable, "-c", WAITER], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        # repeated signals, each landing somewhere in the wait loop: none may hang it
        for _ in range(20):
            process.send_signal(signum)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert out.strip() == "stopped"
