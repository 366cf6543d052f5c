"""`blinkpay bench gate`: how many customers a minute one gate passes, and how soon after
the blink the gate opens.

Real parts, as the demo runs them (device/demo/rig.py): a provisioned terminal on
simulated GPIO with the real FacePipeline, session, SQLite store and MQTT link, a private
mosquitto and the reference host in this process; unlike the demo, everything runs in
real time on the terminal's own threads (camera runner, vision worker, main loop, pattern
scheduler, keypad scanner), so every figure includes the real cost of each stage on this
machine. The queue in front of the camera is device/demo/gate_world.py.

Measured per customer: face in view -> relay, and the blink (its first reopened frame)
-> relay; per run: customers a minute (from the first face in view to the last decision),
the share paid on the face alone, refusals, and the per-stage costs the Pi estimates
scale (device/demo/pi_estimate.py). The books are checked afterwards: every relay pulse
has an approved ledger row, and every approved row reached the host.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from device.app import VisionWorker, open_parts, start_net
from device.clock import SystemClock
from device.config import load_config
from device.demo.gate_world import PEOPLE, Customer, GateWorld
from device.demo.host_setup import SHARD_ID, host_keys, reference_host
from device.demo.pi_estimate import pi_estimates
from device.demo.reference_net import ReferenceNet
from device.errors import BlinkpayError
from device.hw.camera import CameraRunner
from device.net.config import MqttConfig
from device.net.local_broker import LocalBroker, mosquitto_binary
from device.notify import Notifier
from device.provisioning import provision
from device.shell.loop import MainLoop
from device.vision.templates import template_from_images

DEVICE_ID = "bench-gate-01"
SYNC_WAIT_S = 30.0


def bit_ms_for(fps: float) -> int:
    """Three camera frames a bit (two clean after the straddling one is dropped): 200 ms
    at 15 fps, 100 ms at 30 (docs/liveness.md)."""
    return max(50, round(3000.0 / fps))


def _sections(workdir: Path, fps: float, ring: bool, broker_url: str, host_dir: Path) -> dict:
    pins: dict[str, Any] = {} if ring else {"challenge_light": False}
    return {
        "device": {"id": DEVICE_ID, "data_dir": str(workdir / "device"), "log_level": "WARNING"},
        "hardware": {
            "backend": "sim",
            "pins": pins,
            "camera": {
                "source": "synthetic",
                "fps": fps,
                "width": 640,
                "height": 360,
                "detect_width": 640,
                "detect_height": 360,
            },
        },
        "challenge": {"bit_ms": bit_ms_for(fps)},
        "mqtt": {
            "enabled": True,
            "url": broker_url,
            "shard_id": SHARD_ID,
            "backend_public_key_file": str(host_dir / "backend.pub"),
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1.0,
        },
        # two people ride again and again: the per-user velocity rule would stop them
        "payment": {"velocity_max": 10_000},
    }


def run_gate_bench(
    *, fps: float = 30.0, ring: bool = True, customers: int = 20, workdir: Path | None = None
) -> dict[str, Any]:
    binary = mosquitto_binary()
    if binary is None:
        raise BlinkpayError("bench gate needs mosquitto (apt install mosquitto)")
    with tempfile.TemporaryDirectory(prefix="blinkpay-gate-") as tmp:
        root = workdir or Path(tmp)
        broker = LocalBroker(root / "broker", binary).start()
        try:
            return _run(root, broker, fps=fps, ring=ring, customers=customers)
        finally:
            broker.stop()


def _run(root: Path, broker: LocalBroker, *, fps: float, ring: bool, customers: int) -> dict:
    host_dir = root / "host"
    pin_key = host_keys(host_dir)
    sections = _sections(root, fps, ring, broker.url, host_dir)
    provisioned = provision(root / "config.toml", sections, pin_key=pin_key)
    config = load_config(provisioned.config_path, env={})
    clock = SystemClock()
    parts = open_parts(config, sim=True, clock=clock)
    embedder = parts.pipeline.embedder
    assert embedder is not None
    host = reference_host(
        host_dir, MqttConfig(url=broker.url, shard_id=SHARD_ID), embedder.version, embedder.dim
    )
    loop = MainLoop(clock, Notifier(env={}))
    runner: CameraRunner | None = None
    vision: VisionWorker | None = None
    loop_thread: threading.Thread | None = None
    try:
        host.start()
        host.register_device(
            DEVICE_ID,
            provisioned.public_key_pem.encode(),
            provisioned.box_public_key_pem.encode(),
            SHARD_ID,
        )
        net_host = start_net(parts, loop.post)
        assert parts.net is not None
        if not parts.net.link.wait_connected(SYNC_WAIT_S):
            raise BlinkpayError("the bench terminal could not reach its broker")
        world = GateWorld(
            parts.pipeline,
            parts.hardware,
            clock,
            fps=fps,
            customers=customers,
            passage_pin=config.hardware.pins.passage,
        )
        _enrol(parts, host, world)
        terminal = parts.terminal(
            loop.post, net_host, lambda what, d: world.observe(what, d, clock.monotonic())
        )
        parts.hardware.scheduler.start()
        parts.hardware.keypad.start(loop.post)
        runner = CameraRunner(world, clock, config.hardware.camera.stall_after_s)
        vision = VisionWorker(runner, terminal, loop.post, parts.net.metrics)
        loop_thread = threading.Thread(
            target=loop.run, args=(terminal.handle, terminal.tick), name="bench-loop", daemon=True
        )
        loop_thread.start()
        runner.start()
        vision.start()
        began = time.monotonic()
        finished = world.finished.wait(30.0 + customers * 25.0)
        loop.request_stop("bench done")
        loop_thread.join(10.0)
        vision.stop()
        runner.close()
        runner = vision = None
        books = _books(parts, host, world)
        stages = parts.net.metrics.snapshot()["latency_ms"]
        report = _report(world.customers, config, fps=fps, ring=ring, stages=stages)
        report.update(books=books, finished=finished, wall_s=round(time.monotonic() - began, 1))
        calibration = calibrate(parts.pipeline, world, config)
        report["pi_estimates"] = pi_estimates(world.customers, report, calibration, config)
        return report
    finally:
        loop.request_stop("bench closing")
        if loop_thread is not None:
            loop_thread.join(5.0)
        if vision is not None:
            vision.stop()
        if runner is not None:
            runner.close()
        parts.close()
        host.stop()


def calibrate(pipeline: Any, world: GateWorld, config: Any, rounds: int = 12) -> dict:
    """One frame of the terminal's vision and one run of the reference network, in turns,
    on this machine now: their ratio holds whatever else the machine is doing (a host
    shared with other jobs slows both alike), and the reference network's published Pi
    times turn it into the Pi's frame cost (device/demo/pi_estimate.py)."""
    net = ReferenceNet(config.vision.threads)
    fps, hz = float(world.nominal_fps), float(config.vision.passive_max_hz)
    frames, references = [], []
    look = world.customers[0].look
    for i in range(rounds):
        pipeline.process(look.open, float(i), track=False)
        times = pipeline.last_times
        total = sum(asdict(times).values())
        frames.append(total - times.passive * (1.0 - min(1.0, hz / fps)))
        references.append(net.time_once())
    return {
        "frame_ms": statistics.median(frames[2:]),
        "reference_ms": statistics.median(references[2:]),
    }


def _enrol(parts: Any, host: Any, world: GateWorld) -> None:
    """Each person enrolled from their own portrait (the terminal's models), synced to the
    terminal over MQTT as the operator's app would."""
    shard = parts.store.shard
    seen = {c.token: c for c in world.customers}
    for key, token, pin in PEOPLE:
        if token not in seen:
            continue
        template = template_from_images(parts.pipeline, [seen[token].look.open])
        host.enrol(
            token,
            template.vector,
            shard_id=SHARD_ID,
            pin=pin,
            balance=10**9,
            daily_limit=10**7,
            embedder_version=template.embedder_version,
        )
        deadline = time.monotonic() + SYNC_WAIT_S
        while shard.account(token) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if shard.account(token) is None:
            raise BlinkpayError(f"enrolment of {key} never reached the bench terminal")


def _books(parts: Any, host: Any, world: GateWorld) -> dict[str, Any]:
    """Money after the run: every relay pulse has the customer's approved ledger row, and
    every approved row synced and stands approved at the host."""
    ledger = parts.store.ledger
    deadline = time.monotonic() + SYNC_WAIT_S
    while ledger.pending_sync() and time.monotonic() < deadline:
        time.sleep(0.05)
    sim, hw = parts.hardware.sim, parts.config.hardware
    pulses = len(sim.pulses(hw.pins.relay, hw.relay_active_high))
    relayed = [c for c in world.customers if c.relay is not None]
    rows = [ledger.get(c.tx_id) for c in relayed if c.tx_id is not None]
    approved = [r for r in rows if r is not None and r.status == "approved"]
    at_host = {
        str(t["tx_id"]): str(t["status"])
        for t in host.accounts.transactions()
        if t.get("device_id") in (None, DEVICE_ID)
    }
    host_approved = [r for r in approved if at_host.get(r.id) == "approved"]
    return {
        "relay_pulses": pulses,
        "customers_relayed": len(relayed),
        "ledger_approved": len(approved),
        "ledger_unsynced": len(ledger.pending_sync()),
        "host_approved": len(host_approved),
        "balanced": pulses == len(relayed) == len(approved) == len(host_approved),
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


def _report(
    customers: list[Customer], config: Any, *, fps: float, ring: bool, stages: dict
) -> dict[str, Any]:
    paid = [c for c in customers if c.relay is not None]
    face = [c.relay - c.in_view for c in paid if c.in_view is not None and c.relay]
    blink = [c.relay - c.blink_end for c in paid if c.blink_end is not None and c.relay]
    blink_start = [c.relay - c.blink_start for c in paid if c.blink_start and c.relay]
    after = [c.relay - c.live for c in paid if c.live is not None and c.pin_asked is None]
    ends = [c.done for c in customers if c.done is not None]
    starts = [c.in_view for c in customers if c.in_view is not None]
    span = (max(ends) - min(starts)) if ends and starts else None
    handled = len(ends)
    per_min = None if not span else round(handled / span * 60.0, 2)
    pinless = [c for c in paid if c.pin_asked is None]
    return {
        "fps": fps,
        "ring": ring,
        "bit_ms": config.challenge.bit_ms,
        "customers": len(customers),
        "customers_per_min": per_min,
        "face_to_relay_p50_s": _pct(face, 50),
        "face_to_relay_p95_s": _pct(face, 95),
        "blink_to_relay_p50_s": _pct(blink, 50),
        "blink_to_relay_p95_s": _pct(blink, 95),
        "blink_start_to_relay_p95_s": _pct(blink_start, 95),
        # liveness and match hold -> relay: ledger rows, the host's round trip (no PIN)
        "live_to_relay_p50_s": _pct(after, 50),
        "live_to_relay_p95_s": _pct(after, 95),
        "pinless_share": round(len(pinless) / len(paid), 3) if paid else 0.0,
        "paid": len(paid),
        "refused": len([c for c in customers if c.refused is not None]),
        "refusals": sorted({c.refused for c in customers if c.refused}),
        "mean_reaction_s": round(statistics.fmean(c.reaction_s for c in customers), 3)
        if customers
        else None,
        "stages_ms": stages,
        "per_customer": [c.to_dict() for c in customers],
    }
