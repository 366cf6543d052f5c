"""What the console does, without the web: one publishing PaymentHost (its own client id,
no shared subscriptions), the fleet on plain subscriptions, enrolment, customer lifecycle,
remote config and commands, and the counters of every refusal. Each change is audited."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from backend.config import HostConfig
from backend.console.auth import Auth
from backend.console.blink import BlinkBudget, BlinkProofs
from backend.console.consent import CONSENT_TEXT, CONSENT_VERSION, consent_sha256
from backend.console.enrolment import Checked, Enroller, EnrolRefused
from backend.console.fleet import Fleet
from backend.console.store import ConsoleStore
from backend.host import PaymentHost
from backend.shards import STATUS_OPS
from device.errors import BlinkpayError
from device.net.refusals import RejectCounter
from device.net.topics import COMMAND_NAMES
from device.vision.pipeline import FacePipeline

CONNECT_WAIT_S = 10.0


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
        self.fleet = Fleet(
            config.mqtt.prefix,
            self.shard_version,
            self.store.record_shard_ack,
            self._config_answer,
            self.host.inbound.gate,
        )
        self.fleet.attach(self.host.link)
        self.enroller = Enroller(pipeline, self.store) if pipeline is not None else None
        self.blinks = BlinkProofs()
        self.blink_budget = BlinkBudget()
        self.started_at = time.time()

    def start(self, wait_s: float | None = CONNECT_WAIT_S) -> Console:
        try:
            self.host.start(wait_s)
        except BaseException:
            self.host.link.stop()
            raise
        return self

    def stop(self) -> None:
        self.host.stop()

    def refuse(self, reason: str) -> None:
        self.refusals.add(reason)

    def sites(self) -> list[str]:
        """Shards new customers may join: the host's default and every shard it publishes."""
        rows = self.store.query("SELECT shard_id FROM shards ORDER BY shard_id")
        return sorted({self.config.mqtt.shard_id, *(r["shard_id"] for r in rows)})

    def shard_version(self, shard_id: str) -> int | None:
        row = self.store.one("SELECT seq FROM shards WHERE shard_id = ?", (shard_id,))
        return None if row is None else int(row["seq"])

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
    ) -> dict[str, Any]:
        """Consent, account, template and PIN check value, then the shard delta. The checks
        ran before; a failure here rolls the consent back, so nothing is half-enrolled."""
        if self.customer(token) is not None:
            raise EnrolRefused(f"account {token} exists already", "account_exists")
        now = time.time()
        self.store.execute(
            "INSERT INTO consents (token, version, text_sha256, given_at, operator)"
            " VALUES (?, ?, ?, ?, ?)",
            (token, CONSENT_VERSION, consent_sha256(CONSENT_TEXT), now, operator),
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
            seq=delta["seq"],
            photos=checked.template.count,
            pairwise_min=round(checked.pairwise_min, 3),
            nearest=checked.nearest,
        )
        return delta

    def change(self, operator: str, token: str, op: str, client: str) -> dict[str, Any]:
        """suspend | reactivate | delete (erase; consent withdrawal is an erase)."""
        if op not in (*STATUS_OPS, "delete"):
            raise BlinkpayError(f"unknown operation {op}")
        customer = self.customer(token)
        if customer is None:
            raise BlinkpayError(f"no account {token}")
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
        if name not in COMMAND_NAMES:
            raise BlinkpayError(f"unknown command {name}")
        request_id = self.host.send_command(device_id, name)
        self.store.audit(operator, "command", device_id, client, name=name, request_id=request_id)
        return request_id
