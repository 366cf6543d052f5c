"""The imperative shell on its own: the main loop survives failing handlers and counts
what it drops; the effect executor writes the ledger before actuating and keeps the
ledger's states right for refusals, voids and offline approvals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from device.clock import FakeClock, SystemClock
from device.config import Config
from device.core.events import (
    ApproveVend,
    AuthCandidate,
    PulseRelay,
    RequestAuthorization,
    TxRecord,
    UpdateLedger,
    WriteLedger,
)
from device.core.reasons import Reason
from device.hw.devices import Hardware, open_hardware
from device.notify import Notifier
from device.shell.effects import EffectExecutor
from device.shell.loop import MainLoop
from device.shell.terminal import new_tx_id, session_from_config
from device.store.keys import provision_keys
from device.store.terminal_store import Store, open_store, store_key_paths
from device.store.updates import encode_vector

SHARD = "s1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    config = Config.model_validate({"device": {"data_dir": str(tmp_path)}})
    provision_keys(store_key_paths(config.store, config.device.data_dir))
    opened = open_store(config.store, config.device.data_dir, "v1", 4, SHARD)
    vector = np.array([1, 0, 0, 0], np.float32)
    account = {"status": "active", "daily_limit": 5000, "offline_allowance": 300}
    snapshot = {
        "shard_id": SHARD,
        "version": 1,
        "embedder_version": "v1",
        "dim": 4,
        "records": [{"token": "cust-1", "vector_b64": encode_vector(vector), "account": account}],
    }
    assert opened.shard.apply_snapshot(snapshot).outcome == "applied"
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def hardware() -> Iterator[Hardware]:
    hw = open_hardware(Config().hardware, FakeClock(), sim=True)
    try:
        yield hw
    finally:
        hw.close()


def _executor(hardware: Hardware, ledger: Any, seen: list[tuple[str, dict[str, Any]]]):
    return EffectExecutor(
        hardware,
        ledger,
        FakeClock(),
        device_id="dev-1",
        sign=lambda document: "signed",
        match=lambda request: None,
        host=None,
        on_no_host=lambda request: None,
        observer=lambda what, details: seen.append((what, details)),
    )


def _record(status: str = "pending", amount: int = 250) -> TxRecord:
    return TxRecord(
        tx_id=new_tx_id(),
        mode="turnstile",
        amount=amount,
        currency="EUR",
        token="cust-1",
        candidates=("cust-1",),
        match_kind="match",
        match_score=0.97,
        factors=("face", "blink"),
        status=status,  # type: ignore[arg-type]
        reasons=(Reason.OVER_DAILY_CAP,) if status == "declined" else (),
    )


def test_a_refusal_on_the_record_is_stored_declined(store: Store, hardware: Hardware) -> None:
    record = _record("declined")
    _executor(hardware, store.ledger, []).run([WriteLedger(record)], 0.0)
    row = store.ledger.get(record.tx_id)
    assert row is not None and row.status == "declined"
    assert row.reasons == ("over_daily_cap",)
    assert row.body["signature"] == "signed" and row.body["device_id"] == "dev-1"


def test_a_voided_pending_payment_is_declined(store: Store, hardware: Hardware) -> None:
    record = _record()
    executor = _executor(hardware, store.ledger, [])
    executor.run([WriteLedger(record)], 0.0)
    executor.run([UpdateLedger(record.tx_id, "voided", (Reason.CANCELLED,))], 1.0)
    row = store.ledger.get(record.tx_id)
    assert row is not None and row.status == "declined" and row.reasons == ("cancelled",)


def test_an_offline_approval_spends_the_offline_allowance(store: Store, hardware: Hardware) -> None:
    record = _record(amount=250)
    executor = _executor(hardware, store.ledger, [])
    executor.run(
        [
            WriteLedger(record),
            UpdateLedger(
                record.tx_id, "approved", (Reason.APPROVED_OFFLINE,), offline=True, token="cust-1"
            ),
            PulseRelay(record.tx_id, 300),
        ],
        0.0,
    )
    row = store.ledger.get(record.tx_id)
    assert row is not None
    assert store.ledger.offline_remaining("cust-1", row.created_at[:10]) == 50  # of 300
    assert hardware.relay.energised
    assert executor.counters["relay_pulses"] == 1


def test_no_authorization_nor_actuation_without_committed_rows_across_batches(
    hardware: Hardware,
) -> None:
    """Disk full: the pending row is not written. The authorization is not asked, the
    approval that comes in a later batch finds no row, the relay and the vend stay shut,
    and the terminal is told its storage failed."""

    class FullDisk:
        def get(self, tx_id: str) -> None:
            return None

        def record(self, document: Any, status: Any, reasons: Any, sign: Any = None) -> str:
            raise OSError(28, "No space left on device")

        def settle(self, *args: Any, **kwargs: Any) -> None:
            return None  # no such row

    faults: list[str] = []
    seen: list[tuple[str, dict[str, Any]]] = []
    executor = _executor(hardware, FullDisk(), seen)
    executor.on_storage_fault = faults.append
    record = _record()
    request = RequestAuthorization(record.tx_id, 250, "EUR", (AuthCandidate("cust-1"),), "match")
    executor.run([WriteLedger(record), request], 0.0)
    assert not any(what == "authorize" for what, _ in seen)
    executor.run(  # a later batch: the (offline) approval and its actuation
        [
            UpdateLedger(record.tx_id, "approved", (Reason.APPROVED_OFFLINE,), offline=True),
            PulseRelay(record.tx_id, 300),
            ApproveVend(record.tx_id, 250),
        ],
        1.0,
    )
    assert not hardware.relay.energised and executor.vends == []
    assert executor.counters["actuation_skipped"] == 2 and executor.counters["refused"] == 1
    assert len(faults) == 2 and "No space left" in faults[0]


def test_the_relay_waits_for_the_approved_row_not_the_pending_one(
    store: Store, hardware: Hardware
) -> None:
    record = _record()
    executor = _executor(hardware, store.ledger, [])
    executor.run([WriteLedger(record), PulseRelay(record.tx_id, 300)], 0.0)
    assert not hardware.relay.energised  # pending is not paid
    executor.run(
        [
            UpdateLedger(record.tx_id, "approved", (Reason.APPROVED_ONLINE,)),
            PulseRelay(record.tx_id, 300),
        ],
        1.0,
    )
    assert hardware.relay.energised


def test_the_loop_survives_a_failing_handler() -> None:
    notifier = Notifier(env={})
    loop = MainLoop(SystemClock(), notifier, tick_s=0.005)
    handled: list[object] = []

    def handle(event: object, now: float) -> None:
        if event == "bad":
            raise ValueError("a malformed event")
        handled.append(event)
        if event == "last":
            loop.request_stop("done")

    for event in ("bad", "good", "bad", "last"):
        loop.post(event)
    timer = threading.Timer(5.0, loop.request_stop, args=("test timeout",))
    timer.start()
    loop.run(handle, lambda now: None)
    timer.cancel()
    assert loop.stop_reason == "done"
    assert handled == ["good", "last"]
    assert loop.handler_errors == 2


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    loop = MainLoop(SystemClock(), Notifier(env={}), max_events=2)
    assert loop.post(1) and loop.post(2)
    assert not loop.post(3)
    assert loop.dropped_events == 1


def test_account_counts_todays_spending_and_the_velocity_window(
    store: Store, hardware: Hardware
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from device.shell.effects import created_at
    from device.shell.terminal import Terminal
    from device.vision.pipeline import FacePipeline

    config = Config()
    clock = FakeClock(wall_start=1_795_000_000.0)  # 2026-11-19 10:13 UTC
    for age_s, amount in ((30, 250), (120, 300), (3600, 400)):  # the last one is outside
        tx = {
            "id": new_tx_id(),
            "created_at": created_at(clock.time() - age_s),
            "amount": amount,
            "currency": "EUR",
            "token": "cust-1",
            "mode": "turnstile",
        }
        store.ledger.write_pending(tx)
        store.ledger.set_status(tx["id"], "approved", ["approved_online"])
    terminal = Terminal(
        config,
        pipeline=FacePipeline.from_config(config.vision),
        store=store,
        hardware=hardware,
        clock=clock,
        signing_key=Ed25519PrivateKey.generate(),
        pin_key=bytes(32),
        post=lambda event: None,
    )
    account = terminal.account("cust-1")
    assert account is not None
    assert account.spent_today == 950
    assert account.payments_in_window == 2  # velocity_window_s = 600
    assert account.offline_allowance_left == 300 and account.daily_limit == 5000
    assert terminal.account("nobody") is None


def test_telemetry_counts_decisions_without_ids() -> None:
    from device.app import telemetry_observer
    from device.net.telemetry import AppMetrics

    metrics = AppMetrics()
    observe = telemetry_observer(metrics)
    observe("ledger", {"tx_id": "t1", "status": "pending"})
    observe("ledger", {"tx_id": "t1", "status": "approved"})
    observe("ledger", {"tx_id": "t2", "status": "declined"})
    observe("notify", {"kind": "unknown_face", "reasons": ["unknown_face"], "tx_id": None})
    observe("notify", {"kind": "liveness_rejected", "reasons": [], "tx_id": None})
    observe("relay", {"ms": 300})
    assert dict(metrics.decisions) == {"approved": 1, "declined": 1, "unknown_face": 1}
    assert metrics.liveness_rejections == 1


def test_host_adapter_posts_the_answer_or_unavailable() -> None:
    import queue as queue_module

    from device.core.events import (
        AuthCandidate,
        AuthResponse,
        AuthUnavailable,
        RequestAuthorization,
    )
    from device.net.auth import AuthReply
    from device.shell.host import NetHost

    class FakeNet:
        def __init__(self, answer: Any) -> None:
            self.answer, self.asked = answer, []

        def authorize(self, **request: Any) -> AuthReply | None:
            self.asked.append(request)
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    request = RequestAuthorization(
        "tx-1", 3000, "EUR", (AuthCandidate("cust-1", b"\x01" * 16),), "match"
    )
    reply = AuthReply("r1", "tx-1", True, "ok", "cust-1", "host-1")
    for answer, expected in (
        (reply, AuthResponse),
        (None, AuthUnavailable),
        (ConnectionError("broker gone"), AuthUnavailable),
    ):
        posted: queue_module.Queue[object] = queue_module.Queue()
        net = FakeNet(answer)
        NetHost(net, posted.put, FakeClock()).request_authorization(request, 0.0)  # type: ignore[arg-type]
        event = posted.get(timeout=5)
        assert isinstance(event, expected) and event.tx_id == "tx-1"
        assert net.asked[0]["candidates"][0].pin_block == b"\x01" * 16
        if isinstance(event, AuthResponse):
            assert event.approved and event.token == "cust-1"


def test_a_voided_approval_is_kept_re_signed_and_gives_the_allowance_back(
    store: Store, hardware: Hardware
) -> None:
    record = _record(amount=250)
    signed: list[dict[str, Any]] = []

    def sign(document: dict[str, Any]) -> str:
        signed.append(dict(document))
        return f"sig-{document.get('status')}"

    executor = _executor(hardware, store.ledger, [])
    executor.sign = sign
    approve = UpdateLedger(
        record.tx_id, "approved", (Reason.APPROVED_OFFLINE,), offline=True, token="cust-1"
    )
    executor.run([WriteLedger(record), approve], 0.0)
    row = store.ledger.get(record.tx_id)
    assert row is not None and row.body["status"] == "approved"
    assert row.body["authorization"] == "offline" and row.body["signature"] == "sig-approved"
    day = row.created_at[:10]
    assert store.ledger.offline_remaining("cust-1", day) == 50
    assert store.ledger.mark_acked(record.tx_id, "approved")

    executor.run([UpdateLedger(record.tx_id, "voided", (Reason.PASSAGE_TIMEOUT,))], 9.0)
    row = store.ledger.get(record.tx_id)
    assert row is not None and row.status == "voided" and row.acked_at is None
    assert row.reasons == ("approved_offline", "passage_timeout")
    assert row.body["status"] == "voided" and row.body["signature"] == "sig-voided"
    assert signed[-1]["status"] == "voided"  # what was signed is what the host is sent
    assert store.ledger.offline_remaining("cust-1", day) == 300


def test_from_config_reads_timeouts_from_their_sections() -> None:
    config = Config()
    session = session_from_config(config, new_tx_id=lambda: "x", encrypt_pin=lambda p, t: b"")
    assert session.auth_timeout_s == config.mqtt.auth_timeout_s
    assert session.relay_pulse_ms == config.hardware.relay_pulse_ms
    assert session.passage_timeout_s == config.hardware.passage_timeout_s
    no_sensor = session_from_config(
        config, new_tx_id=lambda: "x", encrypt_pin=lambda p, t: b"", passage_sensor=False
    )
    assert no_sensor.passage_timeout_s is None and session.amount == config.payment.fare


def test_the_match_threshold_follows_the_shards_active_templates(store: Store) -> None:
    from device.core.match import for_gallery

    assert store.shard.gallery_size == 1  # the one active template of the fixture
    match = Config().match
    assert for_gallery(match, store.shard.gallery_size) == match  # small shard: as calibrated
    grown = for_gallery(match, 10 * match.reference_gallery)
    assert grown.threshold == pytest.approx(match.threshold + match.threshold_per_decade)
