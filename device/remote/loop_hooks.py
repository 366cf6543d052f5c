"""The main loop's side of remote requests: jobs run on the loop's thread (the session is
never touched from another thread), and a restart that waits until the session is idle."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from device.core.session import State
from device.shell.loop import MainLoop
from device.shell.terminal import Terminal

log = logging.getLogger(__name__)

# The process exits with this code when a remote request restarts it (reboot under --sim,
# a config change that cannot apply live): systemd's Restart= starts it again.
RESTART_EXIT_CODE = 75  # EX_TEMPFAIL


@dataclass
class LoopJob:
    """A function for the main thread; `done` is set once it ran (or failed)."""

    run: Callable[[float], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class TerminalLoop:
    """Wraps the terminal's handle/tick for MainLoop.run and serves the remote side."""

    def __init__(self, loop: MainLoop, terminal: Terminal) -> None:
        self.loop, self.terminal = loop, terminal
        self.exit_code = 0
        self._restart_reason: str | None = None
        self._before_stop: Callable[[], None] | None = None

    # -- main thread ------------------------------------------------------------------
    def handle(self, event: object, now: float) -> None:
        if isinstance(event, LoopJob):
            try:
                event.result = event.run(now)
            except Exception as exc:  # handed back to the caller, the loop goes on
                event.error = exc
            finally:
                event.done.set()
            return
        self.terminal.handle(event, now)

    def tick(self, now: float) -> None:
        self.terminal.tick(now)
        if self._restart_reason is not None and self.idle():
            log.warning(
                "restarting: %s",
                self._restart_reason,
                extra={"event": "remote_restart", "reason": self._restart_reason},
            )
            self.exit_code = RESTART_EXIT_CODE
            self.loop.request_stop(f"restart: {self._restart_reason}")
            self._restart_reason = None
            if self._before_stop is not None:
                self._before_stop()

    def idle(self) -> bool:
        return self.terminal.session.state == State.IDLE

    # -- any thread -------------------------------------------------------------------
    def call(self, run: Callable[[float], Any], timeout_s: float = 5.0) -> Any:
        """Run `run(now)` on the main thread and return its result (TimeoutError when the
        loop does not get to it in time, e.g. while it is stopping)."""
        job = LoopJob(run)
        if not self.loop.post(job) or not job.done.wait(timeout_s):
            raise TimeoutError("the main loop did not run the request in time")
        if job.error is not None:
            raise job.error
        return job.result

    def restart_when_idle(self, reason: str, also: Callable[[], None] | None = None) -> None:
        """Stop with RESTART_EXIT_CODE at the first tick the session is idle (a customer in
        the middle of a payment finishes it first); `also` runs then (a system reboot)."""
        self._before_stop = also
        self._restart_reason = reason
