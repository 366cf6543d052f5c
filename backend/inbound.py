"""The host's handlers for what terminals send (network thread). Each one first checks who
is speaking (backend/trust.py): a message that is not signed by the key registered for its
topic's device id is refused, counted and never answered. Answers go to the contract's
topic of that device, never to a response topic the requester names."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from backend.enrolment import redeem
from backend.limits import FairQueue, RateLimiter
from backend.retemplate_inbox import Refused
from backend.trust import DeviceKeys, Gate
from device.crypto.signing import sign_document
from device.net.client import Inbound
from device.net.outbox import row_digest
from device.net.schemas import PayloadRejected
from device.net.topics import DeviceTopics

if TYPE_CHECKING:
    from backend.host import PaymentHost

log = logging.getLogger(__name__)

HANDLERS = [
    ("auth/req", "AuthRequest", "on_auth"),
    ("tx", "Transaction", "on_tx"),
    ("shard/req", "ShardRequest", "on_shard_request"),
    ("shard/ack", "ShardAck", "on_shard_ack"),
    ("config/state", "ConfigState", "on_config_state"),
    ("cmd/+/result", "CommandResult", "on_command_result"),
    ("register/req", "RegisterRequest", "on_register"),
    ("retemplate", "Retemplate", "on_retemplate"),
]


class HostInbound:
    def __init__(self, host: PaymentHost) -> None:
        self.host = host
        config = host.config
        self.keys = DeviceKeys(host.db)
        self.gate = Gate(host.prefix, self.keys)
        self.auth_rate = RateLimiter(config.auth_rate_per_s, config.auth_burst)
        self.pin_rate = RateLimiter(config.pin_blocks_per_min / 60.0, config.pin_block_burst)
        self.snapshot_rate = RateLimiter(1 / 5.0, 3)
        self.register_rate = RateLimiter(1 / 10.0, 3)
        self.queue = FairQueue(config.auth_workers, config.auth_queue_per_device, "authorize")

    def stop(self) -> None:
        self.queue.stop()

    def _topics(self, device_id: str) -> DeviceTopics:
        return DeviceTopics(self.host.prefix, device_id)

    def _answer(self, topic: str, answer: dict[str, Any], correlation: bytes | None) -> None:
        answer["signature"] = sign_document(answer, self.host.signing_key)
        self.host.link.publish(topic, answer, qos=1, correlation_data=correlation)

    # -- authorization -------------------------------------------------------------------

    def on_auth(self, message: Inbound) -> None:
        device_id = self.gate.signed(message)
        request = message.payload
        pin_blocks = sum(1 for c in request["candidates"] if "pin_block" in c)
        if not self.auth_rate.take(device_id) or not self.pin_rate.take(device_id, pin_blocks):
            self._auth_answer(device_id, message, "declined", "rate_limited", None)
            raise PayloadRejected("rate_limited", device_id)
        # The request's MQTT 5 expiry is the terminal's wait for the answer: past it, the
        # terminal has decided offline and an answer is useless (docs/scaling.md).
        expiry = message.expires_in_s
        deadline = None if expiry is None else time.monotonic() + expiry
        if not self.queue.submit(device_id, lambda: self._authorize(device_id, message, deadline)):
            self._auth_answer(device_id, message, "declined", "rate_limited", None)
            raise PayloadRejected("busy", f"{device_id}: authorization backlog full")

    def _authorize(self, device_id: str, message: Inbound, deadline: float | None = None) -> None:
        """Decide and answer; a request whose terminal stopped waiting while it queued here
        (an overloaded worker) is dropped undecided: no hold, no answer. Its terminal's
        offline row settles it, and the work goes to requests still waited for."""
        request = message.payload
        if deadline is not None and time.monotonic() > deadline:
            self.host.rejects.add("auth_expired")
            return
        decision = self.host.db.retry(
            self.host.accounts.authorize,
            device_id,
            request["tx_id"],
            request["amount"],
            request["candidates"],
        )
        verdict = "approved" if decision.approved else "declined"
        token = decision.token if decision.approved else None
        self._auth_answer(device_id, message, verdict, decision.reason, token)
        self.host.notify()

    def _auth_answer(
        self, device_id: str, message: Inbound, decision: str, reason: str, token: str | None
    ) -> None:
        request = message.payload
        response: dict[str, Any] = {
            "v": 1,
            "request_id": request["request_id"],
            "tx_id": request["tx_id"],
            "decision": decision,
            "reason": reason,
            "host_id": self.host.config.host_id,
        }
        if token is not None:
            response["token"] = token
        topic = self._topics(device_id).auth_resp
        self._answer(topic, response, message.correlation_data)

    # -- ledger sync ---------------------------------------------------------------------

    def on_tx(self, message: Inbound) -> None:
        device_id, _key = self.gate.signed_row(message)
        tx = message.payload["tx"]
        result, reason, held = self.host.db.retry(
            self.host.accounts.record_tx, device_id, tx, message.payload["status"]
        )
        if result == "rejected":
            self.host.rejects.add(f"tx_{reason}")
            log.warning("refused tx %s from %s: %s", tx.get("id"), device_id, reason)
        ack: dict[str, Any] = {
            "v": 1,
            "tx_id": tx.get("id") or tx.get("tx_id"),
            "row_digest": row_digest(message.payload["signature"]),
            "result": result,
            "status": held,
            "host_id": self.host.config.host_id,
        }
        if reason:
            ack["reason"] = reason
        self._answer(self._topics(device_id).tx_ack, ack, None)
        self.host.notify()

    # -- shards, config, commands --------------------------------------------------------

    def on_shard_request(self, message: Inbound) -> None:
        device_id = self.gate.signed(message)
        home = self.host.home_shard(device_id)
        if home is None or message.payload["shard_id"] != home:
            raise PayloadRejected("wrong_shard", f"{device_id}: {message.payload['shard_id']}")
        if not self.snapshot_rate.take(device_id):
            raise PayloadRejected("rate_limited", f"{device_id}: snapshot requests")
        nonce = message.payload.get("nonce")
        version = self.host.publish_snapshot(home, create=False, nonce=nonce)
        log.info("snapshot v%s of %s sent for %s", version, home, device_id)
        self.host.notify()

    def on_shard_ack(self, message: Inbound) -> None:
        device_id = self.gate.signed(message)
        ack = message.payload
        self.host.db.retry(self._record_shard_ack, device_id, ack)
        self.host.shard_acks.append(ack)
        self.host.notify()

    def _record_shard_ack(self, device_id: str, ack: dict[str, Any]) -> None:
        with self.host.db.transaction() as conn:
            conn.execute(
                "UPDATE devices SET shard_id = ?, shard_version = ?, last_seen = ?"
                " WHERE device_id = ?",
                (ack["shard_id"], ack["version"], time.time(), device_id),
            )

    def on_config_state(self, message: Inbound) -> None:
        self.gate.signed(message)
        self.host.config_states.append(message.payload)
        self.host.notify()

    def on_command_result(self, message: Inbound) -> None:
        device_id = self.gate.signed(message)
        name = message.topic.rsplit("/", 2)[-2]
        if message.payload["name"] != name:
            raise PayloadRejected("wrong_target", f"{device_id}: result of {name}")
        self.host.command_results.append(message.payload)
        self.host.notify()

    def on_retemplate(self, message: Inbound) -> None:
        """A terminal's new-embedder template of a face it was just paid by, during an
        embedder migration (backend/retemplate_inbox.py checks the signature, the
        transaction's owner and its customer, and keeps it; refusals are counted)."""
        device_id = self.gate.device(message)
        try:
            self.host.db.retry(self.host.retemplates.receive, device_id, message.payload)
        except Refused as exc:
            self.host.rejects.add(f"retemplate_{exc.reason}")
        self.host.notify()

    # -- first boot ----------------------------------------------------------------------

    def on_register(self, message: Inbound) -> None:
        """A first-booting terminal's key and one-time token (backend/enrolment.py)."""
        device_id = self.gate.device(message)
        if not self.register_rate.take(device_id):
            raise PayloadRejected("rate_limited", f"{device_id}: registration")
        request = message.payload
        reason = self.host.db.retry(redeem, self.host.db, request)
        self.keys.forget(device_id)
        log.info("register %s: %s", device_id, reason)  # never the token itself
        if reason != "ok":
            self.host.rejects.add(f"register_{reason}")
        answer: dict[str, Any] = {
            "v": 1,
            "request_id": request["request_id"],
            "device_id": device_id,
            "result": "registered" if reason == "ok" else "refused",
            "reason": reason,
            "host_id": self.host.config.host_id,
        }
        if reason == "ok":
            home = self.host.home_shard(device_id)
            if home is not None:
                self.host.shards.ensure(home)  # the shard the operator issued the card for
        self._answer(self._topics(device_id).register_resp, answer, message.correlation_data)
        self.host.notify()
