"""The world in front of one simulated gate, for `blinkpay bench gate`: a queue of
customers the camera sees, in real time.

The customers are the demo's people (public-domain portraits with a painted blink,
device/demo/portraits.py) standing left or right of the camera's view, so each new
customer is a new tracked face. Each one steps up, looks, blinks a human reaction time
after the "blink to pay" prompt (and types the PIN when asked), and walks through once the
relay pulses: the face turns away, the gate's passage contact closes, and the next
customer in the queue steps up. The camera source here paces frames at the configured
rate on the real clock and lights each frame as the challenge light was on during its
exposure (device.hw.camera.lighting); the terminal's own threads do everything else.

Every time is the terminal's monotonic clock: frames are stamped with it, and the
terminal's observer (on the main loop) reports when the session bound the face, prompted,
judged liveness, and pulsed the relay.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from device.clock import Clock
from device.demo.portraits import close_eyes, face_mask, load_portrait
from device.hw.camera.frames import Frame, SourceBase
from device.hw.camera.lighting import FAR_RATIO, NEAR_GAIN, Exposure, on_fraction
from device.hw.devices import Hardware
from device.vision.pipeline import FacePipeline

WIDTH, HEIGHT = 640, 360
# lid closure by time since the blink began: ~330 ms from the last open to the first
# reopened frame at 15 or 30 fps, inside the 60-500 ms a blink may take
BLINK = ((0.067, 0.5), (0.133, 0.95), (0.267, 1.0), (0.333, 0.5))
REACTION_S = (0.4, 0.8)  # prompt -> the blink begins (a human's reaction), uniform
PIN_REACTION_S, KEY_GAP_S, KEY_HOLD_S = 0.6, 0.3, 0.12  # a finger on a keypad
TURN_AWAY_S = 0.25  # after the relay: the face leaves the view
PASSAGE_S = 0.6  # after the relay: the customer crosses the passage contact
NEXT_STEPS_UP_S = 0.35  # after the relay: the next customer's face is in view
AFTER_REFUSAL_S = 0.5  # a refused customer leaves; the next steps up
GIVE_UP_S = 20.0  # a customer the terminal never decides for is counted as refused
NOISE_FIELDS = 16
PEOPLE = (("collins", "cust-collins", "4242"), ("hopper", "cust-hopper", "7305"))


@dataclass
class Look:
    """One person at one place in the view: the frames the camera can show of them, as
    floats, and how much of the challenge light reaches each pixel (device.hw.camera.
    lighting's LiveFace: the face near, the wall a tenth as much)."""

    open: np.ndarray
    closed: dict[float, np.ndarray]  # closure -> frame
    mask: np.ndarray
    reach: np.ndarray = field(init=False)
    floats: dict[int, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.reach = (FAR_RATIO + (1.0 - FAR_RATIO) * self.mask)[..., None].astype(np.float32)
        self.floats = {id(f): f.astype(np.float32) for f in (self.open, *self.closed.values())}

    def at_blink(self, since: float) -> np.ndarray:
        for until, closure in BLINK:
            if since < until:
                return self.closed[closure]
        return self.open


@dataclass
class Customer:
    index: int
    token: str
    pin: str
    look: Look
    reaction_s: float
    in_view: float | None = None  # first frame that showed the face
    bound: float | None = None
    prompt: float | None = None
    blink_start: float | None = None
    blink_end: float | None = None  # the first reopened frame
    live: float | None = None  # liveness held: the session went on to the match
    code_start: float | None = None  # the challenge code began (the bind, or before it)
    pin_asked: float | None = None
    relay: float | None = None
    tx_id: str | None = None  # the approved transaction
    refused: str | None = None  # the reason, when the terminal turned them away
    done: float | None = None  # the attempt ended (relay or refusal)
    keys: list[tuple[float, str, bool]] = field(default_factory=list)  # (when, key, down)

    def to_dict(self) -> dict[str, Any]:
        def rel(t: float | None) -> float | None:
            return None if t is None or self.in_view is None else round(t - self.in_view, 3)

        return {
            "customer": self.index,
            "token": self.token,
            "bound_s": rel(self.bound),
            "prompt_s": rel(self.prompt),
            "blink_end_s": rel(self.blink_end),
            "live_s": rel(self.live),
            "relay_s": rel(self.relay),
            "pin": self.pin_asked is not None,
            "refused": self.refused,
        }


def make_look(pipeline: FacePipeline, key: str, right: bool) -> Look:
    """The portrait cropped around its face (three face widths), scaled to the view's
    height, on a grey wall, left or right: a face of about 120 px, as at a gate."""
    import cv2

    portrait = load_portrait(key)
    found = pipeline.process(portrait, 0.0, track=False, embed=False)
    if not found:
        raise RuntimeError(f"the pipeline finds no face in the portrait {key!r}")
    x0, y0, x1, y1 = (float(v) for v in found[0].box)
    side = min(round(3.0 * max(x1 - x0, y1 - y0)), *portrait.shape[:2])
    left = int(min(max(0, (x0 + x1) / 2 - side / 2), portrait.shape[1] - side))
    top = int(min(max(0, (y0 + y1) / 2 - side / 2), portrait.shape[0] - side))
    crop = portrait[top : top + side, left : left + side]
    small = cv2.resize(crop, (HEIGHT, HEIGHT), interpolation=cv2.INTER_AREA)
    canvas = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    x = WIDTH - HEIGHT if right else 0
    canvas[:, x : x + HEIGHT] = small
    faces = pipeline.process(canvas, 0.0, track=False, embed=False)
    if not faces or not faces[0].quality.ok:
        raise RuntimeError(f"the bench's view of {key!r} has no good face")
    landmarks = faces[0].landmarks
    closed = {c: close_eyes(canvas, landmarks, c) for _, c in BLINK}
    return Look(canvas, closed, face_mask(canvas.shape, landmarks))


class GateWorld(SourceBase):
    """The camera's view of the queue, and the customers' hands and feet."""

    def __init__(
        self,
        pipeline: FacePipeline,
        hardware: Hardware,
        clock: Clock,
        *,
        fps: float,
        customers: int,
        passage_pin: int | None,
        seed: int = 1,
    ) -> None:
        self.nominal_fps, self.name = fps, f"gate-queue@{fps:g}"
        self.hw, self.clock, self.passage_pin = hardware, clock, passage_pin
        rng = random.Random(seed)
        looks = {(key, right): make_look(pipeline, key, right) for (key, _, _), right in
                 zip(PEOPLE, (False, True), strict=True)}  # fmt: skip
        self.customers = [
            Customer(
                i,
                PEOPLE[i % 2][1],
                PEOPLE[i % 2][2],
                looks[(PEOPLE[i % 2][0], bool(i % 2))],  # next in line: the other side
                rng.uniform(*REACTION_S),
            )
            for i in range(customers)
        ]
        self.exposure = Exposure(frame_s=1.0 / fps, seed=seed)
        self.wall = np.full((HEIGHT, WIDTH, 3), 128, np.float32)
        # sensor noise (2 grey levels a pixel), drawn ahead: a bank of fields picked at
        # random per frame keeps rendering cheaper than the frame interval on a busy host
        noise_rng = np.random.default_rng(seed)
        self._noise = [
            noise_rng.normal(0.0, self.exposure.noise, (HEIGHT, WIDTH, 3)).astype(np.float32)
            for _ in range(NOISE_FIELDS)
        ]
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._current = 0
        self._arrive_at: float | None = None  # when the current customer steps up
        self._leave_at: float | None = None  # when the current customer's face is gone
        self._passage: list[tuple[float, bool | None]] = []
        self._index = 0
        self._started: float | None = None

    # -- the camera -------------------------------------------------------------------------
    def start(self) -> None:
        self._started = self.clock.monotonic()
        self._arrive_at = self._started + 0.5  # the queue starts a moment after the camera

    def read(self) -> Frame | None:
        """The next frame at the sensor's pace, stamped when it is taken; a frame the
        host was too busy to take on time is skipped, as a sensor would drop it."""
        if self._started is None:
            self.start()
        assert self._started is not None
        due = self._started + self._index / self.nominal_fps
        now = self.clock.monotonic()
        if now > due + 1.0 / self.nominal_fps:
            self._index = int((now - self._started) * self.nominal_fps) + 1
            due = self._started + self._index / self.nominal_fps
        self.clock.sleep(due - self.clock.monotonic())
        self._index += 1
        taken = max(due, self.clock.monotonic())
        return Frame(taken, self._render(taken))

    def close(self) -> None:
        self._started = None

    def _render(self, t: float) -> np.ndarray:
        self._act(t)
        noise = self._noise[int(self.exposure.rng.integers(len(self._noise)))]
        with self._lock:
            customer = self._visible(t)
            if customer is None:
                return np.clip(self.wall + noise, 0, 255).astype(np.uint8)
            if customer.in_view is None:
                customer.in_view = t
            image = customer.look.open
            if customer.blink_start is not None and t >= customer.blink_start:
                image = customer.look.at_blink(t - customer.blink_start)
                if image is customer.look.open and customer.blink_end is None:
                    customer.blink_end = t
        look = customer.look
        lit = self.exposure.lit(self._light_on, t) * NEAR_GAIN
        lit_image = (
            look.floats[id(image)] * (1.0 + lit * look.reach) if lit else look.floats[id(image)]
        )
        return np.clip(lit_image + noise, 0, 255).astype(np.uint8)

    def _visible(self, t: float) -> Customer | None:
        if self._current >= len(self.customers):
            return None
        customer = self.customers[self._current]
        if self._arrive_at is None or t < self._arrive_at:
            return None
        if self._leave_at is not None and t >= self._leave_at:
            return None
        if customer.prompt is not None and customer.blink_start is None:
            customer.blink_start = customer.prompt + customer.reaction_s
        return customer

    def _light_on(self, t0: float, t1: float) -> float:
        light, sim = self.hw.challenge_light, self.hw.sim
        if light is None or sim is None:
            return 0.0
        history = [(t, level == light.active_high) for t, level in sim.history(light.pin)]
        return on_fraction(history, t0, t1)

    # -- hands and feet ---------------------------------------------------------------------
    def _act(self, t: float) -> None:
        """Keys due, the passage contact, and the queue moving on."""
        sim, fingers = self.hw.sim, self.hw.fingers
        with self._lock:
            due_keys = []
            if self._current < len(self.customers):
                customer = self.customers[self._current]
                due_keys = [k for k in customer.keys if k[0] <= t]
                customer.keys = [k for k in customer.keys if k[0] > t]
                waited = None if customer.in_view is None else t - customer.in_view
                if customer.done is None and waited is not None and waited > GIVE_UP_S:
                    self._refused_locked(customer, "bench_gave_up", t)
            passage = [p for p in self._passage if p[0] <= t]
            self._passage = [p for p in self._passage if p[0] > t]
            if (
                self._current < len(self.customers)
                and self._leave_at is not None
                and t >= self._next_arrival_locked()
            ):
                self._next_customer_locked()
        for _, key, down in due_keys:
            if fingers is not None:
                (fingers.press if down else fingers.release)(key)
        for _, level in passage:
            if sim is not None and self.passage_pin is not None:
                sim.drive_input(self.passage_pin, level)

    def _next_arrival_locked(self) -> float:
        customer = self.customers[self._current]
        assert customer.done is not None
        return customer.done + (NEXT_STEPS_UP_S if customer.relay else AFTER_REFUSAL_S)

    def _next_customer_locked(self) -> None:
        self._arrive_at = self._next_arrival_locked()
        self._current += 1
        self._leave_at = None
        if self._current >= len(self.customers):
            self.finished.set()

    def _refused_locked(self, customer: Customer, reason: str, now: float) -> None:
        customer.refused, customer.done = reason, now
        self._leave_at = now

    # -- what the terminal did (its observer, on the main loop) -----------------------------
    def observe(self, what: str, details: dict[str, Any], now: float) -> None:
        with self._lock:
            if self._current >= len(self.customers):
                return
            customer = self.customers[self._current]
            if customer.in_view is None or customer.done is not None:
                return
            if what == "state":
                self._on_state(customer, str(details["state"]), details.get("reasons"), now)
            elif what == "prompt" and str(details.get("text", "")).startswith("Blink to pay"):
                customer.prompt = customer.prompt or now
            elif what == "challenge" and details.get("seconds") is not None:
                customer.code_start = now - float(details["seconds"])
            elif what == "ledger" and details.get("status") == "approved":
                customer.tx_id = str(details["tx_id"])
            elif what == "relay":
                customer.relay = customer.done = now
                self._leave_at = now + TURN_AWAY_S
                if self.passage_pin is not None:
                    self._passage += [(now + PASSAGE_S, False), (now + PASSAGE_S + 0.2, None)]

    def _on_state(self, customer: Customer, state: str, reasons: Any, now: float) -> None:
        if state == "face" and customer.bound is None:
            customer.bound = now
        elif state == "match" and customer.live is None:
            customer.live = now
        elif state == "pin" and customer.pin_asked is None:
            customer.pin_asked = now
            at = now + PIN_REACTION_S
            for key in [*customer.pin, "#"]:
                customer.keys += [(at, key, True), (at + KEY_HOLD_S, key, False)]
                at += KEY_GAP_S
        elif state in ("declined", "idle") and reasons and customer.bound is not None:
            self._refused_locked(customer, str(list(reasons)[-1]), now)


Observe = Callable[[str, dict[str, Any]], None]
