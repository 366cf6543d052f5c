"""A terminal's health as a computed fact: a pure function of what the console last heard
(retained status, telemetry, degradations seen in its history), how long it has been
silent, the console's own broker link, and the time now. No I/O, no clock of its own.

Precedence, first that holds: the console's broker link is down (nothing it shows is
current: `stale`), `fault` (the terminal refused to start), `offline` (last will or clean
stop), `stale` (no status or telemetry for three report intervals), `out_of_service` (its
telemetry says it takes no payments), `degraded` (a growing outbox, a refusal spike, a low
frame rate, a stale shard), else `ok`."""

from __future__ import annotations

from dataclasses import dataclass, field

HEALTHS = ("ok", "degraded", "fault", "out_of_service", "offline", "stale")
PROBLEM_ORDER = {"fault": 0, "out_of_service": 1, "offline": 2, "stale": 3, "degraded": 4, "ok": 5}
STALE_INTERVALS = 3
DEFAULT_INTERVAL_S = 30.0  # the terminal's default telemetry_interval_s (device/net/config.py)
LOW_FPS = 3.0  # a camera below this cannot follow a blink


@dataclass(frozen=True)
class Observed:
    """What the console knows of one terminal at `now`."""

    state: str  # the retained status: online, offline, fault, or unknown (never heard)
    reason: str | None = None  # the status's reason (lost, shutdown, ledger, ...)
    detail: str | None = None  # a fault's detail
    last_seen: float | None = None  # the newest status or telemetry timestamp
    interval_s: float | None = None  # the terminal's telemetry interval, when it said
    service: dict[str, str] | None = None  # telemetry's service {state, detail}
    fps: float | None = None
    degradations: tuple[str, ...] = field(default_factory=tuple)  # from its history
    broker_up: bool = True  # the console's own broker link
    broker_down_since: float | None = None


@dataclass(frozen=True)
class Health:
    health: str
    reason: str


def health(o: Observed, now: float) -> Health:
    if not o.broker_up:
        since = "" if o.broker_down_since is None else f" for {now - o.broker_down_since:.0f} s"
        return Health("stale", f"the console's broker link is down{since}: state unknown")
    if o.state == "fault":
        text = ": ".join(p for p in (o.reason, o.detail) if p) or "the terminal did not start"
        return Health("fault", text)
    if o.state == "offline":
        if o.reason == "shutdown":
            return Health("offline", "stopped cleanly")
        return Health("offline", "connection lost (last will)")
    interval = o.interval_s or DEFAULT_INTERVAL_S
    limit = STALE_INTERVALS * interval
    if o.last_seen is None:
        return Health("stale", "nothing heard from the terminal yet")
    silent = now - o.last_seen
    if silent > limit:
        return Health("stale", f"no telemetry for {silent:.0f} s (3 intervals are {limit:g} s)")
    if o.service and o.service.get("state") == "out_of_service":
        return Health("out_of_service", o.service.get("detail") or "takes no payments")
    problems = list(o.degradations)
    if o.fps is not None and o.fps < LOW_FPS:
        problems.append(f"low frame rate ({o.fps:g} fps)")
    if problems:
        return Health("degraded", ", ".join(problems))
    return Health("ok", "")


def problem_first(health_name: str) -> int:
    """Sort key: the worst health first."""
    return PROBLEM_ORDER.get(health_name, len(PROBLEM_ORDER))
