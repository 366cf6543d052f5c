"""Where the CPU of `blinkpay-host bench load` goes (docs/scaling.md, "Where the limits
are"): the processor time of each part of the run -- the host workers, the database
server, the broker, the simulated terminals -- read from Linux's /proc at the start of the
offered load and at its end, so a figure per payment can be put beside each part. Off
Linux (no /proc) every figure is None."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

_PROC = Path("/proc")


def _ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError):
        return 100.0


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def cpu_s(pid: int, *, reaped_children: bool = False) -> float | None:
    """User + system seconds of a live process (all its threads); with reaped_children,
    also those of its children it has waited for (a server's exited backends)."""
    fields = _stat(pid)
    if fields is None:
        return None
    # fields[11:15] = utime, stime, cutime, cstime (stat fields 14-17)
    ticks = sum(int(v) for v in fields[11 : 15 if reaped_children else 13])
    return ticks / _ticks()


def children(parent: int) -> list[int]:
    """The live child processes of `parent` (a PostgreSQL server's backends)."""
    found = []
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def server_cpu_s(postmaster: int) -> float | None:
    """A server and every process it ran: its own time, its reaped children's, and the
    live children's (a backend that exits mid-run moves from the last to the second)."""
    own = cpu_s(postmaster, reaped_children=True)
    if own is None:
        return None
    return own + sum(cpu_s(child) or 0.0 for child in children(postmaster))


def total(values: Iterable[float | None]) -> float | None:
    items = list(values)
    return None if any(v is None for v in items) else sum(v for v in items if v is not None)


class CpuMeter:
    """The processor time of each part over the offered load. The database is a part of
    its own only for a PostgreSQL server the bench runs (SQLite runs inside the workers; a
    server of yours may be on another machine): None otherwise."""

    def __init__(self, broker_pid: int | None, server_pid: int | None) -> None:
        self._broker_pid = broker_pid
        self._server_pid = server_pid
        self._broker0: float | None = None
        self._server0: float | None = None
        self._workers: dict[int, tuple[float | None, float | None]] = {}  # pid -> (start, end)

    def start(self, worker_pids: Iterable[int]) -> None:
        self._broker0 = cpu_s(self._broker_pid) if self._broker_pid else None
        self._server0 = server_cpu_s(self._server_pid) if self._server_pid else None
        self._workers = {pid: (cpu_s(pid), None) for pid in worker_pids}

    def worker_ends(self, pid: int) -> None:
        """A worker about to be killed: its time so far (a restarted one counts whole)."""
        start = self._workers.get(pid, (0.0, None))[0]
        self._workers[pid] = (start, cpu_s(pid))

    def stop(
        self, worker_pids: Iterable[int], terminals_s: float, payments: int
    ) -> dict[str, float | None]:
        """Milliseconds per payment for each part and in all."""
        for pid in worker_pids:
            start = self._workers.get(pid, (0.0, None))[0]
            self._workers[pid] = (start, cpu_s(pid))
        workers = total(
            None if end is None or start is None else end - start
            for start, end in self._workers.values()
        )
        parts: dict[str, float | None] = {
            "workers": workers,
            "database": _delta(self._server0, self._server_pid, server_cpu_s),
            "broker": _delta(self._broker0, self._broker_pid, cpu_s),
            "terminals": terminals_s,
        }
        known = [v for v in parts.values() if v is not None]
        parts["total"] = sum(known) if known else None
        scale = 1000.0 / max(payments, 1)
        return {k: None if v is None else round(v * scale, 2) for k, v in parts.items()}


def _delta(
    before: float | None, pid: int | None, read: Callable[[int], float | None]
) -> float | None:
    if before is None or pid is None:
        return None
    after = read(pid)
    return None if after is None else float(after) - before
