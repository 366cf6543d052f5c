"""What the console does, without the web: one publishing PaymentHost (its own client id,
no shared subscriptions), the fleet on plain subscriptions, enrolment, customer lifecycle,
remote config and commands, and the counters of every refusal. Each change is audited."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from backend.config import HostConfig
from backend.console.alerts import Alerts
from backend.console.auth import Auth
from backend.console.blink import BlinkBudget, BlinkProofs
from backend.console.commands import Commands
from backend.console.consent import CONSENT_TEXTS, CONSENT_VERSION, consent_sha256
from backend.console.delivery import Delivery
from backend.console.enrolment import Checked, Enroller, EnrolRefused
from backend.console.fleet import Fleet
from backend.console.fleet_figures import FleetFigures
from backend.console.history import History
from backend.console.i18n import N_
from backend.console.store import ConsoleStore
from backend.host import PaymentHost
from backend.shards import STATUS_OPS
from device.errors import TranslatableError
from device.net.refusals import RejectCounter
from device.vision.pipeline import FacePipeline

log = logging.getLogger("blinkpay.console")

CONNECT_WAIT_S = 10.0
WATCH_S = 1.0  # how often health is recomputed (silence and the broker link need no message)
SHARD_CACHE_S = 1.0
REFUSED_ROWS_WINDOW_S = 3600.0  # a refused row keeps its terminal `degraded` this long
UPKEEP_S = 60.0  # how often telemetry is aggregated per minute and trimmed to its retention


def console_host_config(config: HostConfig) -> HostConfig:
    """The console's MQTT identity: its own client id and no session left on the broker."""
    mqtt = config.mqtt.model_copy(update={"session_expiry_s": 0})
    host_id = f"{config.host_id[:40]}-console-{os.getpid()}"
    return config.model_copy(update={"host_id": host_id, "mqtt": mqtt})


class Console:
    def __init__(self, config: HostConfig, pipeline: FacePipeline | None) -> None:
        self.config = config
        self.host = PaymentHost(console_host_config(config), serve=False)
        self.store = ConsoleStore(self.host.db)
        self.auth = Auth(self.store)
        self.refusals = RejectCounter()  # counted reasons, exported on /metrics
        self._shard_seq: dict[str, tuple[float, int | None]] = {}
        self._refused_cache: tuple[float, set[str]] | None = None
        self.history = History(self.store, config.console)
        self.figures = FleetFigures(self.store, self.history)
        self.delivery = Delivery(self.store, config.console, config.host_id)
        self.alerts = Alerts(self.store, self.delivery.notify)
        self.commands = Commands(
            self.store,
            config.console,
            lambda device_id, name, request_id: self.host.publish_command(
                device_id, name, request_id
            ),
            lambda device_id: (
                self.host.link.connected and self.fleet.state_of(device_id) == "online"
            ),
        )
        self.fleet = Fleet(
            config.mqtt.prefix,
            self.shard_version,
            self.store.record_shard_ack,
            self._config_answer,
            self.host.inbound.gate,
            broker_up=lambda: self.host.link.connected,
            on_telemetry=self._keep(self.history.record_telemetry),
            on_event=self._keep(self.history.record_event),
            on_status=self._command_status,
            on_result=self._keep(self._command_result),
            refused_rows=self.refused_rows_lately,
        )
        self.fleet.attach(self.host.link)
        self.enroller = Enroller(pipeline, self.store) if pipeline is not None else None
        self.blinks = BlinkProofs()
        self.blink_budget = BlinkBudget()
        self.started_at = time.time()
        self._upkeep_at = 0.0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self, wait_s: float | None = CONNECT_WAIT_S) -> Console:
        try:
            self.host.start(wait_s)
        except BaseException:
            self.host.link.stop()
            raise
        self._watcher = threading.Thread(target=self._watch, name="console-watch", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        self.delivery.stop()
        self.host.stop()

    def _watch(self) -> None:
        """Health recomputed on time alone: a silent terminal goes stale, a dropped broker
        link turns every terminal stale, without any message arriving."""
        while not self._stopping.wait(WATCH_S):
            self.watch_once()

    def watch_once(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        healths = self.fleet.tick(now)
        try:
            if self.commands.tick(now):
                self.fleet.changed()
        except Exception:
            log.exception("command upkeep failed")
        try:
            self.alerts.evaluate(healths, self.fleet.broker(now), now)
        except Exception:  # a busy or failing store: the next round tries again
            log.exception("alert evaluation failed")
        if now - self._upkeep_at >= UPKEEP_S:
            self._upkeep_at = now
            try:
                self.history.maintain(now)
            except Exception:  # a busy or failing store: the next round tries again
                log.exception("telemetry history upkeep failed")

    def _keep(self, record: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """A store write on the network thread: a failure is logged and counted, and the
        live fleet still updates."""

        def keep(payload: dict[str, Any]) -> None:
            try:
                record(payload)
            except Exception:
                self.refusals.add("history_write_failed")
                log.exception("could not store %s", record.__name__)

        return keep

    def refuse(self, reason: str) -> None:
        self.refusals.add(reason)

    def sites(self) -> list[str]:
        """Shards new customers may join: the host's default and every shard it publishes."""
        rows = self.store.query("SELECT shard_id FROM shards ORDER BY shard_id")
        return sorted({self.config.mqtt.shard_id, *(r["shard_id"] for r in rows)})

    def refused_rows_lately(self, now: float) -> set[str]:
        """Terminals with a signed row the host refused in the last REFUSED_ROWS_WINDOW_S
        (they show `degraded`); read at most once a second."""
        cached = self._refused_cache
        if cached is not None and now - cached[0] < SHARD_CACHE_S:
            return cached[1]
        devices = self.store.terminals_with_refused_rows(now - REFUSED_ROWS_WINDOW_S)
        self._refused_cache = (now, devices)
        return devices

    def shard_version(self, shard_id: str) -> int | None:
        """The host's shard sequence, read at most once a second per shard (health is
        recomputed every second for every terminal)."""
        now = time.monotonic()
        cached = self._shard_seq.get(shard_id)
        if cached is not None and now - cached[0] < SHARD_CACHE_S:
            return cached[1]
        row = self.store.one("SELECT seq FROM shards WHERE shard_id = ?", (shard_id,))
        seq = None if row is None else int(row["seq"])
        self._shard_seq[shard_id] = (now, seq)
        return seq

    def fleet_snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The fleet with what the host's store adds per terminal: today's approvals (the
        ledger) and refusals (events), and its last transaction. Today is the UTC day."""
        now = time.time() if now is None else now
        snap = self.fleet.snapshot(now)
        midnight = now - now % 86400
        figures = self.figures.get(midnight)
        today, refusals, last = figures.today, figures.refusals, figures.last
        for row in snap["terminals"]:
            mine = today.get(row["device_id"], {})
            row["today"] = {
                "approved": mine.get("approved", 0),
                "refused": refusals.get(row["device_id"], 0) + mine.get("declined", 0),
            }
            row["last_tx"] = last.get(row["device_id"])
        snap["currency"] = self.config.currency
        return snap

    # -- customers ----------------------------------------------------------------------

    def customers(self, search: str = "", limit: int = 200) -> list[dict[str, Any]]:
        like = f"%{search}%"
        return self.store.query(
            "SELECT a.token, a.shard_id, a.status, a.daily_limit, a.offline_allowance,"
            " a.balance, (SELECT MAX(given_at) FROM consents c WHERE c.token = a.token"
            " AND c.withdrawn_at IS NULL) AS consent_at,"
            " EXISTS(SELECT 1 FROM templates t WHERE t.token = a.token) AS has_template"
            " FROM accounts a WHERE a.token LIKE ? ORDER BY a.token LIMIT ?",
            (like, limit),
        )

    def customer(self, token: str) -> dict[str, Any] | None:
        return self.store.one(
            "SELECT token, shard_id, status, daily_limit, offline_allowance, balance,"
            " pin_hash IS NOT NULL AS has_pin FROM accounts WHERE token = ?",
            (token,),
        )

    def consents(self, token: str) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM consents WHERE token = ? ORDER BY id", (token,))

    def erasures(self, token: str) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT * FROM erasures WHERE token = ? ORDER BY requested_at", (token,)
        )
        for row in rows:
            row["acks"] = self.store.erasure_acks(row["shard_id"], row["seq"])
            acked = {a["device_id"] for a in row["acks"]}
            row["pending"] = [
                d for d in self.store.shard_terminals(row["shard_id"]) if d not in acked
            ]
        return rows

    def enrol(
        self,
        operator: str,
        token: str,
        checked: Checked,
        *,
        pin: str,
        limits: dict[str, int],
        client: str,
        shard_id: str | None = None,
        consent_language: str = "en",
    ) -> dict[str, Any]:
        """Consent (the version, and the language and SHA-256 of the text the customer read),
        account, template and PIN check value, then the shard delta. The checks ran before;
        a failure here rolls the consent back, so nothing is half-enrolled."""
        text = CONSENT_TEXTS[consent_language]
        if self.customer(token) is not None:
            raise EnrolRefused(
                N_("account {token} exists already"), "account_exists", args={"token": token}
            )
        now = time.time()
        self.store.execute(
            "INSERT INTO consents (token, version, language, text_sha256, given_at, operator)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (token, CONSENT_VERSION, consent_language, consent_sha256(text), now, operator),
        )
        try:
            delta = self.host.enrol(
                token,
                checked.template.vector,
                shard_id=shard_id or self.config.mqtt.shard_id,
                pin=pin,
                embedder_version=checked.template.embedder_version,
                **limits,
            )
        except BaseException:
            self.store.execute(
                "DELETE FROM consents WHERE token = ? AND given_at = ?", (token, now)
            )
            raise
        self.store.audit(
            operator,
            "enrol",
            token,
            client,
            consent=CONSENT_VERSION,
            consent_language=consent_language,
            seq=delta["seq"],
            photos=checked.template.count,
            pairwise_min=round(checked.pairwise_min, 3),
            nearest=checked.nearest,
        )
        return delta

    def change(self, operator: str, token: str, op: str, client: str) -> dict[str, Any]:
        """suspend | reactivate | delete (erase; consent withdrawal is an erase)."""
        if op not in (*STATUS_OPS, "delete"):
            raise TranslatableError(N_("unknown operation {op}"), "change_refused", {"op": op})
        customer = self.customer(token)
        if customer is None:
            raise TranslatableError(N_("no account {token}"), "change_refused", {"token": token})
        delta = self.host.change(token, op)
        if op == "delete":
            now = time.time()
            self.store.execute(
                "INSERT INTO erasures VALUES (?, ?, ?, ?, ?)",
                (token, delta["shard_id"], delta["seq"], now, operator),
            )
            self.store.execute(
                "UPDATE consents SET withdrawn_at = ? WHERE token = ? AND withdrawn_at IS NULL",
                (now, token),
            )
        self.store.audit(operator, op, token, client, seq=delta["seq"])
        return delta

    def export(self, operator: str, token: str, client: str) -> dict[str, Any]:
        """Everything the host holds about one customer (a subject access request)."""
        account = self.customer(token)
        template = self.store.one(
            "SELECT embedder_version, dim, vector FROM templates WHERE token = ?", (token,)
        )
        if template is not None:
            template["vector_b64"] = base64.b64encode(template.pop("vector")).decode()
        data = {
            "token": token,
            "exported_at": time.time(),
            "account": account,
            "template": template,
            "consents": self.consents(token),
            "erasures": self.store.query("SELECT * FROM erasures WHERE token = ?", (token,)),
            "authorizations": self.store.query(
                "SELECT * FROM authorizations WHERE token = ? ORDER BY decided_at", (token,)
            ),
            "transactions": [
                {**row, "body": json.loads(row["body"])}
                for row in self.store.query(
                    "SELECT * FROM transactions WHERE token = ? ORDER BY received_at", (token,)
                )
            ],
        }
        self.store.audit(operator, "export", token, client)
        return data

    # -- terminals ----------------------------------------------------------------------

    def configs(self, device_id: str) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT * FROM terminal_configs WHERE device_id = ? ORDER BY version DESC",
            (device_id,),
        )

    def next_config_version(self, device_id: str) -> int:
        row = self.store.one(
            "SELECT MAX(version) AS v FROM terminal_configs WHERE device_id = ?", (device_id,)
        )
        state = self.fleet.config_state(device_id) or {}
        return max(int((row or {}).get("v") or 0), int(state.get("version", 0))) + 1

    def _config_answer(self, state: dict[str, Any]) -> None:
        """The terminal's config/state onto the version this console sent (network thread)."""
        self.store.execute(
            "UPDATE terminal_configs SET status = ?, reason = ?"
            " WHERE device_id = ? AND version = ?",
            (state["status"], state.get("reason"), state["device_id"], state["version"]),
        )

    def send_config(
        self, operator: str, device_id: str, partial: dict[str, Any], client: str
    ) -> int:
        version = self.next_config_version(device_id)
        self.store.execute(
            "INSERT INTO terminal_configs (device_id, version, config, sent_at, operator)"
            " VALUES (?, ?, ?, ?, ?)",
            (device_id, version, json.dumps(partial, sort_keys=True), time.time(), operator),
        )
        self.host.send_config(device_id, version, partial)
        self.store.audit(operator, "config", device_id, client, version=version, config=partial)
        return version

    def send_command(self, operator: str, device_id: str, name: str, client: str) -> str:
        """Stored, then delivered now or when the terminal comes back (CommandRefused when
        it is away and commands do not wait)."""
        command = self.commands.send(operator, device_id, name)
        self.fleet.changed()
        self.store.audit(
            operator,
            "command",
            device_id,
            client,
            name=name,
            request_id=command["request_id"],
            status=command["status"],
        )
        return str(command["request_id"])

    def _command_status(self, device_id: str, state: str) -> None:
        """A terminal's status (network thread): back online, its pending commands go."""
        try:
            if self.commands.on_status(device_id, state):
                self.fleet.changed()
        except Exception:
            log.exception("could not deliver the pending commands of %s", device_id)

    def _command_result(self, result: dict[str, Any]) -> None:
        self.commands.on_result(result)
        self.fleet.changed()
