"""Simulated terminals for `blinkpay-host bench load` (backend/bench_load.py): many paho
clients multiplexed on one thread per process, each a registered terminal speaking the
real contract (docs/asyncapi.yaml): a signed-by-nobody AuthRequest with response topic and
correlation data, the host's signed answer checked, then the terminal's Ed25519-signed
ledger row on tx, resent until the host's signed TxAck. No answer within the terminal's
auth timeout: an offline decline row (what a terminal does without the host)."""

from __future__ import annotations

import json
import math
import random
import selectors
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from uuid6 import uuid7

from device.crypto.signing import sign_document, verify_document
from device.net.client import no_delay
from device.net.topics import DeviceTopics


@dataclass
class Spec:
    """One process's share of the terminals and of the offered load."""

    host: str
    port: int
    prefix: str
    host_key_pem: bytes
    devices: list[tuple[str, bytes, str]]  # device id, Ed25519 private PEM, customer token
    rate: float  # payments per second offered by this process
    start_at: float  # wall clock: every process starts paying together
    duration_s: float
    drain_s: float
    auth_timeout_s: float
    tx_retry_s: float
    amount: int
    currency: str


@dataclass
class Payment:
    tx_id: str
    token: str
    request_id: str = ""
    sent_at: float = 0.0
    row: dict[str, Any] | None = None
    row_sent_at: float = 0.0


@dataclass
class Terminal:
    device_id: str
    key: Ed25519PrivateKey
    token: str
    client: mqtt.Client
    topics: DeviceTopics
    ready: bool = False
    payment: Payment | None = None


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    answered_in_run: int = 0
    sent: int = 0
    skipped_busy: int = 0
    approved: int = 0
    declined: int = 0
    timeouts: int = 0
    late_or_duplicate: int = 0
    bad_signature: int = 0
    row_resends: int = 0
    cpu_s: float = 0.0  # this process's processor time from the start of the load to its end
    rows: dict[str, tuple[str, str, int, bool]] = field(default_factory=dict)
    # tx id -> (row status, token, amount, acknowledged)


class Fleet:
    def __init__(self, spec: Spec) -> None:
        from cryptography.hazmat.primitives import serialization

        self.spec = spec
        host_key = serialization.load_pem_public_key(spec.host_key_pem)
        assert isinstance(host_key, Ed25519PublicKey)
        self.host_key = host_key
        self.out = Outcome()
        self.selector = selectors.DefaultSelector()
        self.terminals: list[Terminal] = []
        self.by_client: dict[str, Terminal] = {}
        self.waiting: dict[str, Terminal] = {}  # request id -> terminal awaiting the answer
        self.free: list[Terminal] = []  # terminals with no payment under way
        self.run_ends = spec.start_at + spec.duration_s
        for device_id, pem, token in spec.devices:
            key = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(key, Ed25519PrivateKey)
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv5
            )
            client.on_connect = self._on_connect
            client.on_message = self._on_message
            client.on_subscribe = self._on_subscribe
            terminal = Terminal(device_id, key, token, client, DeviceTopics(spec.prefix, device_id))
            client.user_data_set(terminal)
            self.terminals.append(terminal)
            self.free.append(terminal)

    # -- the one loop ----------------------------------------------------------------------

    def connect(self, timeout: float = 60.0) -> None:
        for terminal in self.terminals:
            terminal.client.connect(self.spec.host, self.spec.port, keepalive=60, clean_start=True)
            sock = terminal.client.socket()
            no_delay(sock)
            self.selector.register(sock, selectors.EVENT_READ, terminal)
            self._write(terminal)
        deadline = time.monotonic() + timeout
        while not all(t.ready for t in self.terminals):
            if time.monotonic() > deadline:
                raise RuntimeError("simulated terminals could not all connect and subscribe")
            self._pump(0.05)

    def _write(self, terminal: Terminal) -> None:
        while terminal.client.want_write():
            if terminal.client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
                break

    def _pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            terminal: Terminal = key.data
            terminal.client.loop_read(100)
            self._write(terminal)

    def run(self) -> Outcome:
        self.connect()
        rng = random.Random()
        while time.time() < self.spec.start_at:
            self._pump(0.01)
        cpu_at_start = time.process_time()
        interval = 1.0 / self.spec.rate if self.spec.rate > 0 else float("inf")
        next_at = time.monotonic()
        run_ends = time.monotonic() + max(0.0, self.run_ends - time.time())
        drain_ends = run_ends + self.spec.drain_s
        last_misc = last_timers = time.monotonic()
        while True:
            now = time.monotonic()
            if now < run_ends:
                while next_at <= now:
                    next_at += interval
                    if not self.free:  # every gate busy: the offered load is too high
                        self.out.skipped_busy += 1
                        continue
                    index = rng.randrange(len(self.free))
                    self.free[index], self.free[-1] = self.free[-1], self.free[index]
                    self._pay(self.free.pop())
            elif now > drain_ends or len(self.free) == len(self.terminals):
                break
            if now - last_timers > 0.05:  # timeouts and resends: 50 ms is precise enough
                last_timers = now
                self._timers(now)
            if now - last_misc > 1.0:
                last_misc = now
                for terminal in self.terminals:
                    terminal.client.loop_misc()
                    self._write(terminal)
            self._pump(max(0.0, min(0.005, next_at - now)) if now < run_ends else 0.02)
        for terminal in self.terminals:
            if terminal.payment is not None and terminal.payment.row is not None:
                row = terminal.payment.row
                self.out.rows[row["id"]] = (row["status"], row["token"], row["amount"], False)
            terminal.client.disconnect()
            self._write(terminal)
        self.out.cpu_s = time.process_time() - cpu_at_start
        return self.out

    # -- a payment -------------------------------------------------------------------------

    def _pay(self, terminal: Terminal) -> None:
        payment = Payment(tx_id=str(uuid7()), token=terminal.token)
        payment.request_id = uuid.uuid4().hex
        terminal.payment = payment
        request = {
            "v": 1,
            "request_id": payment.request_id,
            "device_id": terminal.device_id,
            "tx_id": payment.tx_id,
            "amount": self.spec.amount,
            "currency": self.spec.currency,
            "ts": time.time(),
            "candidates": [{"token": terminal.token}],
        }
        request["signature"] = sign_document(request, terminal.key)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = terminal.topics.auth_resp
        props.CorrelationData = payment.request_id.encode()
        props.MessageExpiryInterval = math.ceil(self.spec.auth_timeout_s)  # as device/net/auth.py
        payment.sent_at = time.monotonic()
        self.waiting[payment.request_id] = terminal
        terminal.client.publish(terminal.topics.auth_req, json.dumps(request), 1, properties=props)
        self._write(terminal)
        self.out.sent += 1

    def _row(self, terminal: Terminal, status: str, authorization: str, reasons: list[str]) -> None:
        payment = terminal.payment
        assert payment is not None
        created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        document: dict[str, Any] = {
            "id": payment.tx_id,
            "created_at": created,
            "amount": self.spec.amount,
            "currency": self.spec.currency,
            "mode": "turnstile",
            "status": status,
            "token": payment.token,
            "authorization": authorization,
            "reasons": reasons,
        }
        signature = sign_document(document, terminal.key)
        payment.row = document
        payment.row_sent_at = time.monotonic()
        self._send_row(terminal, signature)

    def _send_row(self, terminal: Terminal, signature: str | None = None) -> None:
        payment = terminal.payment
        assert payment is not None and payment.row is not None
        if signature is None:
            signature = sign_document(payment.row, terminal.key)
        message = {
            "v": 1,
            "device_id": terminal.device_id,
            "status": payment.row["status"],
            "tx": payment.row,
            "signature": signature,
        }
        terminal.client.publish(terminal.topics.tx, json.dumps(message), 1)
        self._write(terminal)

    def _timers(self, now: float) -> None:
        for terminal in self.terminals:
            payment = terminal.payment
            if payment is None:
                continue
            if payment.row is None and now - payment.sent_at > self.spec.auth_timeout_s:
                self.waiting.pop(payment.request_id, None)
                self.out.timeouts += 1
                self._row(terminal, "declined", "offline", ["host_timeout"])
            elif payment.row is not None and now - payment.row_sent_at > self.spec.tx_retry_s:
                payment.row_sent_at = now
                self.out.row_resends += 1
                self._send_row(terminal)

    # -- paho callbacks (this thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, terminal: Terminal, *args: Any) -> None:
        client.subscribe([(terminal.topics.auth_resp, 1), (terminal.topics.tx_ack, 1)])

    def _on_subscribe(self, client: mqtt.Client, terminal: Terminal, *args: Any) -> None:
        terminal.ready = True

    def _on_message(self, client: mqtt.Client, terminal: Terminal, message: Any) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            self.out.bad_signature += 1
            return
        if not isinstance(payload, dict) or not verify_document(payload, self.host_key):
            self.out.bad_signature += 1
            return
        if message.topic == terminal.topics.auth_resp:
            self._on_answer(terminal, payload)
        elif message.topic == terminal.topics.tx_ack:
            self._on_ack(terminal, payload)

    def _on_answer(self, terminal: Terminal, answer: dict[str, Any]) -> None:
        waiting = self.waiting.pop(answer.get("request_id", ""), None)
        payment = terminal.payment
        if waiting is not terminal or payment is None or payment.tx_id != answer.get("tx_id"):
            self.out.late_or_duplicate += 1
            return
        now = time.monotonic()
        self.out.latencies_ms.append((now - payment.sent_at) * 1000.0)
        if time.time() <= self.run_ends:
            self.out.answered_in_run += 1
        if answer["decision"] == "approved":
            self.out.approved += 1
            self._row(terminal, "approved", "online", ["approved_online"])
        else:
            self.out.declined += 1
            self._row(terminal, "declined", "online", [str(answer.get("reason", ""))[:64]])

    def _on_ack(self, terminal: Terminal, ack: dict[str, Any]) -> None:
        payment = terminal.payment
        if payment is None or payment.row is None or ack.get("tx_id") != payment.tx_id:
            return  # the ack of a resend already acknowledged
        row = payment.row
        self.out.rows[row["id"]] = (row["status"], row["token"], row["amount"], True)
        terminal.payment = None
        self.free.append(terminal)


def run_fleet(spec: Spec, results: Any) -> None:
    """Process entry point: the outcome goes back on the `results` queue."""
    try:
        results.put(("ok", Fleet(spec).run()))
    except Exception as exc:  # the parent reports it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
