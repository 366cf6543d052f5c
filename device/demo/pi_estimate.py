"""Pi 4 / Pi 5 estimates for `blinkpay bench gate`, from what the bench measured here.

What scales with the CPU is the vision pipeline (TFLite models and the NumPy/OpenCV
around them): one frame's cost here is multiplied by a slowdown factor per board. What
does not scale is kept as measured: the customer's own timing (approach, reaction,
blink), the challenge code's length in time, the ledger's fsyncs and the host's round
trip (the host is a server).

The factors come from one published benchmark (device/demo/reference_net.py): A. Allan's
TensorFlow Lite times of SSD MobileNet v1 0.75 on a Pi 4 (82.7 ms) and a Pi 5 (16.9 ms),
four threads. The same network is timed here after the run, in turns with one frame of
the terminal's own vision, at the terminal's vision threads, so a machine busy with
other work slows both sides alike. Allan's figures are doubled for the two threads the
terminal's vision uses by default (perfect scaling from four: the conservative side).
Factor = Pi time / time here.

Per customer the estimate replays the measured timeline with the board's frame cost: the
vision worker processes at most 1000 / frame_ms frames a second; if that is under the
camera's rate, the challenge's bits must last three processed frames, so its code takes
longer; the blink is seen one processed frame after it ends; the rest after liveness
(ledger, host, relay) is kept as measured.
"""

from __future__ import annotations

from typing import Any

from device.core.challenge import first_look
from device.demo.reference_net import PI4_MS, PI5_MS


def board_factors(reference_ms: float, threads: int) -> dict[str, float]:
    """(Pi time of the reference network at `threads`) / (its time here)."""
    scale = 4.0 / max(1, min(threads, 4))  # Allan timed four threads
    return {"pi4": PI4_MS * scale / reference_ms, "pi5": PI5_MS * scale / reference_ms}


def pi_estimates(
    customers: list[Any], measured: dict[str, Any], calibration: dict[str, float], config: Any
) -> dict[str, Any]:
    """calibration: the terminal's frame cost and the reference network's time, measured
    here in turns (device/demo/gate_bench.py calibrate)."""
    threads = int(config.vision.threads)
    here_ms, reference_ms = calibration["frame_ms"], calibration["reference_ms"]
    factors = board_factors(reference_ms, threads)
    fps = float(measured["fps"])
    out: dict[str, Any] = {
        "host_frame_ms": round(here_ms, 2),
        "reference_net_ms_here": round(reference_ms, 1),
        "reference_net_ms_published": {"pi4": PI4_MS, "pi5": PI5_MS, "threads": 4},
        "vision_threads": threads,
        "factors": {k: round(v, 2) for k, v in factors.items()},
    }
    for board, factor in factors.items():
        out[board] = _board(customers, measured, config, fps, here_ms * factor, factor)
    if threads < 4:  # a Pi has four cores: vision.threads = 4 halves the factor at best
        for board, factor in board_factors(reference_ms, 4).items():
            quicker = factor  # Pi time at four threads / reference time here
            out[f"{board}_threads4"] = _board(
                customers, measured, config, fps, here_ms * quicker, quicker
            )
    return out


def _board(
    customers: list[Any],
    measured: dict[str, Any],
    config: Any,
    fps: float,
    board_ms: float,
    factor: float,
) -> dict[str, Any]:
    processed_fps = min(fps, 1000.0 / board_ms) if board_ms > 0 else fps
    ring = bool(measured["ring"])
    cfg = config.challenge
    first = first_look(cfg) or cfg.code_bits
    # as the terminal's runner does: three processed frames a bit, at most twice bit_ms
    bit_s = min(max(cfg.bit_ms / 1000.0, 3.0 / processed_fps), 2.0 * cfg.bit_ms / 1000.0)
    challenge_ok = not ring or processed_fps >= 2.0 / bit_s  # a clean frame in every bit
    code_s = first * bit_s + (cfg.max_lag_frames + 1) / processed_fps
    frame_s = 1.0 / processed_fps
    shifts, blink, face = [], [], []
    for c in customers:
        if c.relay is None or c.live is None or c.bound is None or c.blink_end is None:
            continue
        # liveness here: the later of the blink seen and the code's first look
        blink_seen = c.blink_end + frame_s + board_ms / 1000.0
        code_start = c.code_start if c.code_start is not None else c.bound
        live = max(blink_seen, code_start + frame_s + code_s) if ring else blink_seen
        if c.pin_asked is not None:
            live = max(live, c.live)  # the customer's typing dominates: keep it
        relay = live + (c.relay - c.live)
        shifts.append(relay - c.relay)
        blink.append(relay - c.blink_end)
        face.append(relay - c.in_view)
    per_min = measured.get("customers_per_min")
    if per_min and shifts:
        cycle = 60.0 / per_min + sum(shifts) / len(shifts)
        per_min = round(60.0 / cycle, 1)
    return {
        "factor": round(factor, 2),
        "frame_ms": round(board_ms, 1),
        "processed_fps": round(processed_fps, 1),
        "bit_ms": round(bit_s * 1000),
        "challenge_first_look_s": round(code_s, 2) if ring else None,
        "challenge_runs": challenge_ok,
        "customers_per_min": per_min,
        "blink_to_relay_p95_s": _p95(blink),
        "face_to_relay_p95_s": _p95(face),
    }


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 2)
