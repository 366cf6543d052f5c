"""A terminal's health as a computed fact: a pure function of what the console last heard
(retained status, telemetry, degradations seen in its history), how long it has been
silent, the console's own broker link, and the time now. No I/O, no clock of its own.

Precedence, first that holds: the console's broker link is down (nothing it shows is
current: `stale`), `fault` (the terminal refused to start), `offline` (last will or clean
stop), `stale` (no status or telemetry for three report intervals), `out_of_service` (its
telemetry says it takes no payments), `degraded` (a growing outbox, a refusal spike, forged
or misdirected messages refused since the last report, a low frame rate, a stale shard, a
signed row the host refused in the last hour), else `ok`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from backend.console.i18n import N_

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


Part = tuple[str, dict[str, str]]  # a gettext message and its arguments
TERMINAL_TEXT = N_("{text}")  # the terminal's own words (a fault's detail): not translated


@dataclass(frozen=True)
class Health:
    health: str
    parts: tuple[Part, ...] = ()

    @property
    def reason(self) -> str:
        """In English; `reason_in` renders the parts in the page's language."""
        return reason_in(self.parts, _english)


def _english(message: str, **args: str) -> str:
    return message.format(**args) if args else message


def reason_in(parts: Iterable[Part], _: Callable[..., str]) -> str:
    """A health's (or an alert's) reason in the language of `_` (a gettext)."""
    return ", ".join(_(message, **args) for message, args in parts)


def _one(health_name: str, message: str, **args: str) -> Health:
    return Health(health_name, ((message, args),))


def health(o: Observed, now: float) -> Health:
    if not o.broker_up:
        if o.broker_down_since is None:
            return _one("stale", "the console's broker link is down: state unknown")
        return _one(
            "stale",
            "the console's broker link is down for {seconds} s: state unknown",
            seconds=f"{now - o.broker_down_since:.0f}",
        )
    if o.state == "fault":
        text = ": ".join(p for p in (o.reason, o.detail) if p)
        if not text:
            return _one("fault", "the terminal did not start")
        return _one("fault", TERMINAL_TEXT, text=text)
    if o.state == "offline":
        if o.reason == "shutdown":
            return _one("offline", "stopped cleanly")
        return _one("offline", "connection lost (last will)")
    interval = o.interval_s or DEFAULT_INTERVAL_S
    limit = STALE_INTERVALS * interval
    if o.last_seen is None:
        return _one("stale", "nothing heard from the terminal yet")
    silent = now - o.last_seen
    if silent > limit:
        return _one(
            "stale",
            "no telemetry for {seconds} s (3 intervals are {limit} s)",
            seconds=f"{silent:.0f}",
            limit=f"{limit:g}",
        )
    if o.service and o.service.get("state") == "out_of_service":
        if o.service.get("detail"):
            return _one("out_of_service", TERMINAL_TEXT, text=o.service["detail"])
        return _one("out_of_service", "takes no payments")
    problems: list[Part] = [(p, {}) for p in o.degradations]
    if o.fps is not None and o.fps < LOW_FPS:
        problems.append((N_("low frame rate ({fps} fps)"), {"fps": f"{o.fps:g}"}))
    if problems:
        return Health("degraded", tuple(problems))
    return Health("ok")


# The names shown for each health (gettext messages).
LABELS = {
    "ok": "ok",
    "degraded": "degraded",
    "fault": "fault",
    "out_of_service": "out of service",
    "offline": "offline",
    "stale": "stale",
}


def problem_first(health_name: str) -> int:
    """Sort key: the worst health first."""
    return PROBLEM_ORDER.get(health_name, len(PROBLEM_ORDER))
