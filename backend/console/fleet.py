"""The live fleet: what every terminal said on its status (retained, last will), telemetry,
events, config/state, cmd/{name}/result and shard/ack topics, kept in memory with a short
history per terminal. MQTT handlers run on the link's network thread and only update this
state under a lock; the web side reads snapshots and waits on `version`."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.console.health import Health, Observed, health, problem_first
from backend.console.i18n import N_
from backend.trust import Gate
from device.net.client import Inbound, MqttLink
from device.net.topics import device_id_of

HISTORY = 360  # telemetry points kept per terminal (an hour at the default 10 s interval)
EVENTS = 50
STALE_SHARD_S = 600.0  # a shard behind the host this long is an alert
REFUSAL_SPIKE = 5  # liveness refusals between two telemetry reports
# Refusals no working host, broker or outage causes: a message signed by a key the terminal
# does not trust, sealed templates that fail their check, or a genuine command or shard
# message copied to the wrong terminal or shard (telemetry's `rejected`; the device page
# lists them all in words). Not `foreign_ack` (a resent row's second ack after the first
# was recorded counts there) nor `not_a_recipient` (a terminal registered after the shard
# message was sealed meets one, and asks for a snapshot).
FORGED_REASONS = frozenset({"bad_signature", "bad_seal", "wrong_target", "wrong_shard"})


@dataclass
class Terminal:
    device_id: str
    state: str = "unknown"
    reason: str | None = None
    detail: str | None = None
    boot_id: str | None = None
    software: str | None = None
    last_seen: float | None = None
    telemetry: dict[str, Any] = field(default_factory=dict)
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENTS))
    config_state: dict[str, Any] | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # request id -> result
    behind_since: float | None = None


def _latency(telemetry: dict[str, Any], stage: str, q: str) -> float | None:
    value = telemetry.get("latency_ms", {}).get(stage, {}).get(q)
    return None if value is None else float(value)


class Fleet:
    def __init__(
        self,
        prefix: str,
        shard_version: Callable[[str], int | None],
        on_shard_ack: Callable[[str, str, int], None] | None = None,
        on_config_state: Callable[[dict[str, Any]], None] | None = None,
        gate: Gate | None = None,
        *,
        broker_up: Callable[[], bool] = lambda: True,
        on_telemetry: Callable[[dict[str, Any]], None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_status: Callable[[str, str], None] | None = None,
        on_result: Callable[[dict[str, Any]], None] | None = None,
        refused_rows: Callable[[float], set[str]] = lambda _now: set(),
    ) -> None:
        """gate: checks that config/state, command results and shard/ack are signed by the
        key registered for their device (backend/trust.py); without one (tests of the
        pages alone) they are taken as they come."""
        self.prefix = prefix
        self._gate = gate
        self._shard_version = shard_version
        self._on_shard_ack = on_shard_ack
        self._on_config_answer = on_config_state
        self._broker_up = broker_up
        self._record_telemetry = on_telemetry
        self._record_event = on_event
        self._status_seen = on_status
        self._result_seen = on_result
        self._refused_rows = refused_rows  # terminals whose signed rows the host refused lately
        self.broker_down_since: float | None = None
        self.started_at = time.time()  # silence counts from here for what came before
        self._healths: dict[str, str] = {}
        self._lock = threading.Condition()
        self._terminals: dict[str, Terminal] = {}
        self.version = 0  # bumps on every change; server-sent events wait on it

    def attach(self, link: MqttLink) -> None:
        """Plain (not shared) subscriptions: the console sees every terminal's messages."""
        base = f"{self.prefix}/dev/+"
        for suffix, message, handler in (
            ("status", "DeviceStatus", self._on_status),
            ("telemetry", "Telemetry", self._on_telemetry),
            ("events", "Event", self._on_event),
            ("config/state", "ConfigState", self._on_config_state),
            ("cmd/+/result", "CommandResult", self._on_result),
            ("shard/ack", "ShardAck", self._on_ack),
        ):
            link.subscribe(f"{base}/{suffix}", message, handler)

    # -- inbound (network thread) -------------------------------------------------------

    def _terminal(self, message: Inbound) -> Terminal | None:
        device_id = device_id_of(self.prefix, message.topic)
        if device_id is None or message.payload.get("device_id", device_id) != device_id:
            return None
        return self._terminals.setdefault(device_id, Terminal(device_id))

    def _update(self, message: Inbound, apply: Callable[[Terminal, dict[str, Any]], None]) -> None:
        with self._lock:
            terminal = self._terminal(message)
            if terminal is None:
                return
            apply(terminal, message.payload)
            self.version += 1
            self._lock.notify_all()

    def _on_status(self, message: Inbound) -> None:
        def apply(t: Terminal, p: dict[str, Any]) -> None:
            t.state, t.reason, t.boot_id = p["state"], p.get("reason"), p["boot_id"]
            t.detail = p.get("detail")
            t.software = p.get("software") or t.software
            if p["state"] == "online":
                t.last_seen = p.get("ts", time.time())

        self._update(message, apply)
        if self._status_seen is not None:
            device_id = device_id_of(self.prefix, message.topic)
            if device_id is not None:
                self._status_seen(device_id, message.payload["state"])

    def _on_telemetry(self, message: Inbound) -> None:
        def apply(t: Terminal, p: dict[str, Any]) -> None:
            t.telemetry = p
            t.last_seen = p["ts"]
            t.history.append(
                {
                    "ts": p["ts"],
                    "fps": p["fps"],
                    "cpu_temp_c": p["cpu_temp_c"],
                    "outbox_depth": p["outbox_depth"],
                    "liveness_rejections": p["liveness_rejections"],
                    "forged": _forged(p),
                    "embed_p95": _latency(p, "embed", "p95"),
                    "detect_p95": _latency(p, "detect", "p95"),
                }
            )

        self._update(message, apply)
        if self._record_telemetry is not None:
            self._record_telemetry(message.payload)

    def _on_event(self, message: Inbound) -> None:
        # stored before the version bump: a page's stream woken by it reads the event from
        # the store (routes_fleet._device_view), and nothing else may wake it after
        try:
            if self._record_event is not None:
                self._record_event(message.payload)
        finally:
            self._update(message, lambda t, p: t.events.appendleft(p))

    def _signed(self, message: Inbound) -> None:
        """A report that changes what the console records (a config applied, an erasure
        reached a terminal) is refused unless its terminal signed it."""
        if self._gate is not None:
            self._gate.signed(message)

    def _on_config_state(self, message: Inbound) -> None:
        self._signed(message)
        if self._on_config_answer is not None:
            self._on_config_answer(message.payload)

        def apply(t: Terminal, p: dict[str, Any]) -> None:
            t.config_state = p

        self._update(message, apply)

    def _on_result(self, message: Inbound) -> None:
        self._signed(message)

        def apply(t: Terminal, p: dict[str, Any]) -> None:
            t.results[p["request_id"]] = p

        self._update(message, apply)
        if self._result_seen is not None:
            self._result_seen(message.payload)

    def _on_ack(self, message: Inbound) -> None:
        self._signed(message)
        p = message.payload
        if self._on_shard_ack is not None:
            self._on_shard_ack(p["device_id"], p["shard_id"], int(p["version"]))
        self._update(message, lambda t, _: None)

    # -- reading (web side) -------------------------------------------------------------

    def wait_change(self, seen: int, timeout: float) -> int:
        with self._lock:
            self._lock.wait_for(lambda: self.version != seen, timeout)
            return self.version

    def result(self, device_id: str, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            terminal = self._terminals.get(device_id)
            return None if terminal is None else terminal.results.get(request_id)

    def config_state(self, device_id: str) -> dict[str, Any] | None:
        with self._lock:
            terminal = self._terminals.get(device_id)
            return None if terminal is None else terminal.config_state

    def state_of(self, device_id: str) -> str | None:
        """The terminal's retained status (online, offline, fault), None when never seen."""
        with self._lock:
            terminal = self._terminals.get(device_id)
            return None if terminal is None else terminal.state

    def changed(self) -> None:
        """Something the pages show changed outside the fleet (a command's status)."""
        with self._lock:
            self.version += 1
            self._lock.notify_all()

    def device_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._terminals)

    def broker(self, now: float | None = None) -> dict[str, Any]:
        """The console's own broker link (and since when it is down)."""
        now = time.time() if now is None else now
        with self._lock:
            return self._broker(now)

    def _broker(self, now: float) -> dict[str, Any]:
        up = self._broker_up()
        if up:
            self.broker_down_since = None
        elif self.broker_down_since is None:
            self.broker_down_since = now
        return {"up": up, "down_since": self.broker_down_since}

    def tick(self, now: float | None = None) -> dict[str, Health]:
        """Recompute every health (silence and the broker link change with time alone);
        a change wakes the live pages. Returns device id -> its health (and reason)."""
        now = time.time() if now is None else now
        refused = self._refused_rows(now)  # the store, read outside the lock
        with self._lock:
            rows = [self._row(t, now, refused) for t in self._terminals.values()]
            found = {
                r["device_id"]: Health(r["health"], tuple((m, a) for m, a in r["health_parts"]))
                for r in rows
            }
            healths = {d: h.health for d, h in found.items()}
            if healths != self._healths:
                self._healths = healths
                self.version += 1
                self._lock.notify_all()
            return found

    def rows(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every terminal, problems first, then by id."""
        now = time.time() if now is None else now
        refused = self._refused_rows(now)
        with self._lock:
            rows = [self._row(t, now, refused) for t in self._terminals.values()]
        return sorted(rows, key=lambda r: (problem_first(r["health"]), r["device_id"]))

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """/api/fleet and the fleet page's live data: the broker link, counts, terminals."""
        now = time.time() if now is None else now
        rows = self.rows(now)
        counts: dict[str, int] = {}
        sites: dict[str, dict[str, int]] = {}
        for r in rows:
            counts[r["health"]] = counts.get(r["health"], 0) + 1
            site = sites.setdefault(r["site"] or "-", {})
            site[r["health"]] = site.get(r["health"], 0) + 1
        return {
            "now": now,
            "broker": self.broker(now),
            "counts": counts,
            "sites": sites,
            "terminals": rows,
        }

    def detail(self, device_id: str, now: float | None = None) -> dict[str, Any] | None:
        now = time.time() if now is None else now
        refused = self._refused_rows(now)
        with self._lock:
            t = self._terminals.get(device_id)
            if t is None:
                return None
            return {
                **self._row(t, now, refused),
                "broker": self._broker(now),
                "events": list(t.events),
                "config_state": t.config_state,
                "results": sorted(t.results.values(), key=lambda r: r["request_id"]),
            }

    def _row(self, t: Terminal, now: float, refused: set[str]) -> dict[str, Any]:
        tel = t.telemetry
        shard = tel.get("shard") or {}
        host_version = self._shard_version(shard["shard_id"]) if shard else None
        lag = None
        if host_version is not None and shard.get("version") is not None:
            lag = max(0, host_version - int(shard["version"]))
        if lag:
            t.behind_since = t.behind_since or now
        else:
            t.behind_since = None
        row = {
            "device_id": t.device_id,
            "state": t.state,
            "reason": t.reason,
            "site": shard.get("shard_id"),
            "software": t.software,
            "versions": tel.get("versions"),
            "model": ((tel.get("versions") or {}).get("models") or {}).get("embedder"),
            "last_seen": t.last_seen,
            "shard_version": shard.get("version"),
            "shard_lag": lag,
            "outbox_depth": tel.get("outbox_depth"),
            "fps": tel.get("fps"),
            "latency_ms": tel.get("latency_ms", {}),
            "decisions": tel.get("decisions", {}),
            "liveness_rejections": tel.get("liveness_rejections"),
            "rejected": tel.get("rejected", {}),
            "cpu_temp_c": tel.get("cpu_temp_c"),
            "uptime_s": tel.get("uptime_s"),
        }
        broker = self._broker(now)
        found = health(
            Observed(
                state=t.state,
                reason=t.reason,
                detail=t.detail,
                # a retained status older than this console: silent only if it stays so
                last_seen=None if t.last_seen is None else max(t.last_seen, self.started_at),
                interval_s=tel.get("interval_s"),
                service=tel.get("service"),
                fps=tel.get("fps"),
                degradations=tuple(_alerts(t, row, now, t.device_id in refused)),
                broker_up=broker["up"],
                broker_down_since=broker["down_since"],
            ),
            now,
        )
        row["health"], row["health_reason"] = found.health, found.reason
        row["health_parts"] = [list(part) for part in found.parts]
        row["alerts"] = [] if found.health == "ok" else [f"{found.health}: {found.reason}"]
        return row


def _alerts(t: Terminal, row: dict[str, Any], now: float, rows_refused: bool) -> list[str]:
    alerts = []
    if rows_refused:  # signed by its key yet against the rules: a rogue or broken terminal
        alerts.append(N_("rows refused by the host in the last hour"))
    if t.behind_since is not None and now - t.behind_since > STALE_SHARD_S:
        alerts.append(N_("shard stale"))
    depths = [h["outbox_depth"] for h in list(t.history)[-4:]]
    if len(depths) == 4 and depths[-1] > 0 and all(b > a for a, b in itertools.pairwise(depths)):
        alerts.append(N_("outbox growing"))
    refusals = [h["liveness_rejections"] for h in list(t.history)[-2:]]
    if len(refusals) == 2 and refusals[1] - refusals[0] >= REFUSAL_SPIKE:
        alerts.append(N_("refusal spike"))
    forged = [h.get("forged", 0) for h in list(t.history)[-2:]]
    if len(forged) == 2 and forged[1] > forged[0]:  # counted per boot: a restart resets it
        alerts.append(N_("forged or misdirected messages refused since the last report"))
    return alerts


def _forged(telemetry: dict[str, Any]) -> int:
    rejected = telemetry.get("rejected") or {}
    return sum(int(n) for reason, n in rejected.items() if reason in FORGED_REASONS)
