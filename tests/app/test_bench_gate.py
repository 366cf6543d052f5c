"""`blinkpay bench gate` on a short queue: the report has its fields and the books balance
(every relay pulse has an approved ledger row that reached the host). Timings are the
bench's own business (docs/liveness.md), never asserted here."""

from __future__ import annotations

import json

import pytest

from device.cli import main
from device.net.local_broker import mosquitto_binary

KEYS = {
    "customers_per_min",
    "blink_to_relay_p50_s",
    "blink_to_relay_p95_s",
    "face_to_relay_p50_s",
    "face_to_relay_p95_s",
    "pinless_share",
    "refused",
    "paid",
    "fps",
    "ring",
    "books",
    "pi_estimates",
    "per_customer",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.mqtt,
    pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed"),
]


def _bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["bench", "gate", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_a_short_queue_with_the_ring(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _bench(capsys, "--fps", "15", "--customers", "2")
    assert code == 0 and set(report) >= KEYS
    assert report["fps"] == 15.0 and report["ring"] is True and report["bit_ms"] == 200
    assert report["paid"] + report["refused"] == 2 == len(report["per_customer"])
    books = report["books"]
    assert books["balanced"] and books["relay_pulses"] == report["paid"]
    assert books["host_approved"] == books["ledger_approved"] == report["paid"]
    if report["paid"]:
        assert report["pinless_share"] == 1.0  # a ring: the face alone pays a fare
    for board in ("pi4", "pi5"):
        estimate = report["pi_estimates"][board]
        assert estimate["factor"] > 0 and estimate["frame_ms"] > 0


def test_a_ringless_gate_asks_every_customer_for_the_pin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = _bench(capsys, "--fps", "15", "--no-ring", "--customers", "2")
    assert code == 0 and report["ring"] is False and report["books"]["balanced"]
    assert report["pinless_share"] == 0.0
    assert all(c["pin"] for c in report["per_customer"] if c["relay_s"] is not None)
