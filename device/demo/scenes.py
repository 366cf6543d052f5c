"""The demo's scenes: what a customer does, what the terminal should do, what it did.

Each scene plays the world on the DemoRig (frames, keys, the gate, the network) and then
reads the outcome back from what really happened: the ledger rows, the simulated relay's
pulses, the vends and the session's own reasons. `expected` is written before the scene
runs; a scene passes only when the outcome read back is exactly that.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from device.demo.portraits import PORTRAITS, close_eyes, face_mask, load_portrait
from device.demo.rig import FPS, DemoRig, Narrate
from device.hw.camera.lighting import LiveFace, Presentation, PrintFillingView, ScreenReplay

if TYPE_CHECKING:
    from device.demo.console import DemoConsole

# A blink at 15 fps as lid closure per frame: ~270 ms from the last open frame to the
# first reopened one, inside the human 80-500 ms range the liveness check accepts.
BLINK_CLOSURES = (0.5, 0.95, 1.0, 1.0, 0.5)
LOOK_FRAMES = 8  # open-eyed frames before the blink: the face settles, the prompt lights
AFTER_FRAMES = 20  # frames after the blink while the terminal decides (more while the
# illumination challenge still plays its code: see Director.hold)
DEMO_PIN = "730519"  # six digits: a sequence the no-PIN-on-disk test can search for
PIN_AMOUNT = 3000  # cents, above the default pin_over of 2000
COLLINS, HOPPER = "cust-collins", "cust-hopper"


@dataclass
class Person:
    token: str
    name: str
    open: np.ndarray
    blink: list[np.ndarray]
    mask: np.ndarray  # where the face is: what the challenge light reaches from near


@dataclass
class SceneResult:
    title: str
    expected: str
    actual: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.expected == self.actual

    def to_dict(self) -> dict[str, Any]:
        return {
            "scene": self.title,
            "expected": self.expected,
            "actual": self.actual,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class DemoReport:
    online: bool
    scenes: list[SceneResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.scenes) and all(s.ok for s in self.scenes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "online": self.online,
            "seconds": round(self.seconds, 2),
            "scenes": [s.to_dict() for s in self.scenes],
        }


def make_person(rig: DemoRig, key: str, token: str) -> Person:
    """The portrait, and its blink painted from the face mesh the pipeline finds on it."""
    assert rig.parts is not None
    rgb = load_portrait(key)
    faces = rig.parts.pipeline.process(rgb, 0.0, track=False, embed=False)
    if not faces:
        raise RuntimeError(f"the pipeline finds no face in the demo portrait {key!r}")
    blink = [close_eyes(rgb, faces[0].landmarks, c) for c in BLINK_CLOSURES]
    mask = face_mask(rgb.shape, faces[0].landmarks)
    return Person(token, PORTRAITS[key].name, rgb, blink, mask)


class Director:
    """Runs scenes on one rig and reads their outcomes back."""

    def __init__(self, rig: DemoRig, narrate: Narrate) -> None:
        self.rig, self.narrate = rig, narrate
        self.collins = make_person(rig, "collins", COLLINS)
        self.hopper = make_person(rig, "hopper", HOPPER)
        self.empty = np.full_like(self.collins.open, 128)

    # -- acting -----------------------------------------------------------------------------
    def look_and_blink(
        self, person: Person, blink: bool = True, presentation: Presentation | None = None
    ) -> None:
        """The person (or a print or a screen showing them) in front of the camera."""
        self.rig.presentation = presentation or LiveFace(person.mask)
        for _ in range(LOOK_FRAMES):
            self.rig.show(person.open)
        if blink:
            for frame in person.blink:
                self.rig.show(frame)
        self.hold(person.open, AFTER_FRAMES)

    def hold(self, rgb: np.ndarray, frames: int) -> None:
        """Stay in view for `frames`, and on while the terminal still judges liveness (the
        challenge code takes a few seconds), never longer than the intent window."""
        session = self.rig.terminal.session
        limit = frames + round(self.rig.config.session.intent_timeout_s * FPS)
        for shown in range(limit):
            if shown >= frames and session.state.value != "intent":
                break
            self.rig.show(rgb)

    def wait_for_host(self) -> None:
        """While the session waits for the host, the network takes real time."""
        session = self.rig.terminal.session
        self.rig.wait_real(lambda: session.state.value != "authorize")

    def leave(self) -> None:
        """The person walks away; the terminal sees nobody until its cooldown ends."""
        self.rig.presentation = None
        for _ in range(30):
            self.rig.show(self.empty)

    # -- reading back -----------------------------------------------------------------------
    def outcome(self, start: int, pulses_before: int) -> str:
        events = self.rig.events[start:]
        assert self.rig.parts is not None
        ledger = self.rig.parts.store.ledger
        tx_ids = list(dict.fromkeys(d["tx_id"] for w, d in events if w == "ledger"))
        rows = [row for row in (ledger.get(t) for t in tx_ids) if row is not None]
        gate = self.rig.relay_pulses() > pulses_before
        # the machine's VEND SUCCESS, not our VEND APPROVED, says the product came out
        vended = any(w == "notify" and d["kind"] == "vended" for w, d in events)
        voided = [r for r in rows if r.status == "voided"]
        if voided:  # paid, not delivered: the payment is undone (the refund is a note)
            return f"voided ({voided[-1].reasons[-1]})"
        if any(r.status == "approved" for r in rows):
            row = next(r for r in rows if r.status == "approved")
            how = "offline" if "approved_offline" in row.reasons else "online"
            pin = " with PIN" if "pin" in row.body.get("factors", ()) else ""
            parts = [f"approved {how}{pin}"]
            parts += ["gate opened"] if gate else []
            parts += ["vended"] if vended else []
            return ", ".join(parts)
        actuated = " BUT ACTUATED" if gate or vended else ""
        if rows:
            return f"declined ({rows[-1].reasons[-1]}){actuated}"
        reasons = [
            r
            for w, d in events
            if w == "state" and d["state"] in ("idle", "declined")
            for r in d["reasons"]
        ]
        if reasons == ["cancelled"]:
            return f"cancelled, no payment{actuated}"
        shown = reasons[0] if reasons else "nothing happened"
        return f"refused ({shown}), no payment{actuated}"

    def scene(self, title: str, expected: str, act: Callable[[], list[str] | None]) -> SceneResult:
        self.narrate(f"\n== {title}")
        self.narrate(f"   expected: {expected}")
        start, pulses = len(self.rig.events), self.rig.relay_pulses()
        self.rig.scene_started = self.rig.clock.monotonic()
        began = time.monotonic()
        notes = act() or []
        actual = self.outcome(start, pulses)
        if notes:
            actual = ", ".join([actual, *notes])
        if self.rig.relay_energised():
            actual += ", RELAY STILL ENERGISED"
        result = SceneResult(title, expected, actual, time.monotonic() - began)
        mark = "ok" if result.ok else "MISMATCH"
        self.narrate(f"   actual:   {actual}  [{mark}]")
        self.leave()
        return result


def play(rig: DemoRig, narrate: Narrate, *, ride_only: bool = False) -> list[SceneResult]:
    """Every scene in turn; `ride_only`: the first, a paid ride, alone."""
    d = Director(rig, narrate)
    online = rig.online
    how = "online" if online else "offline"
    results: list[SceneResult] = []

    narrate("Eileen Collins enrols in the operator's app (template made on this terminal)")
    rig.enrol(COLLINS, [d.collins.open], pin="4242")

    def turnstile_ride() -> None:
        rig.use("turnstile")
        d.look_and_blink(d.collins)
        d.wait_for_host()
        for _ in range(5):
            rig.show(d.collins.open)
        rig.walk_through_gate()

    results.append(
        d.scene(
            "A customer looks, blinks and passes the turnstile",
            f"approved {how}, gate opened",
            turnstile_ride,
        )
    )
    if ride_only:
        return results

    def photo() -> None:
        rig.use("turnstile")
        rig.presentation = PrintFillingView()  # the light falls evenly on the paper
        frames = round((rig.config.session.intent_timeout_s + 1.5) * FPS)
        for _ in range(frames):
            rig.show(d.collins.open)  # a print of an enrolled face: it never blinks

    photo_refusal = "challenge_failed" if rig.challenge else "intent_timeout"
    results.append(
        d.scene(
            "A photo of that customer is held up, filling the view",
            f"refused ({photo_refusal}), no payment",
            photo,
        )
    )

    def replay() -> None:
        rig.use("turnstile")
        # A phone replays a video of her looking and blinking: the painted blink the live
        # scene used, on a screen whose glow drifts by itself and ignores the light.
        d.look_and_blink(d.collins, presentation=ScreenReplay())

    if rig.challenge:
        results.append(
            d.scene(
                "A phone replays a video of that customer blinking",
                "refused (challenge_failed), no payment",
                replay,
            )
        )

    def stranger() -> None:
        rig.use("turnstile")
        d.look_and_blink(d.hopper)

    results.append(
        d.scene("A stranger (not enrolled) blinks", "refused (unknown_face), no payment", stranger)
    )

    narrate("\nGrace Hopper enrols in the operator's app, with a PIN")
    rig.enrol(HOPPER, [d.hopper.open], pin=DEMO_PIN)

    from device.demo.vending_scenes import vending_scenes  # it builds on this module

    results += vending_scenes(d, rig, narrate)

    def outage() -> list[str]:
        rig.use("turnstile")
        if rig.broker is not None:
            narrate("   (the network drops: the broker stops)")
            rig.network_down()
        d.look_and_blink(d.collins)
        d.wait_for_host()
        for _ in range(5):
            rig.show(d.collins.open)
        rig.walk_through_gate()
        if rig.broker is None:
            return []
        narrate("   (the network returns)")
        rig.network_up()
        assert rig.parts is not None
        ledger = rig.parts.store.ledger
        synced = rig.wait_real(lambda: not ledger.pending_sync(), timeout_s=15.0)
        return ["synced" if synced else "NOT synced"]

    expected_outage = "approved offline, gate opened" + (", synced" if online else "")
    results.append(
        d.scene("The network drops; a fare is approved offline", expected_outage, outage)
    )
    return results


def run_demo(
    narrate: Narrate = print,
    *,
    workdir: Path | None = None,
    use_broker: bool = True,
    console: DemoConsole | None = None,
    ride_only: bool = False,
) -> DemoReport:
    """Set up a temporary terminal and host, play every scene (with `console` recording
    them), serve the console for the person trying it, tear everything down."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="blinkpay-demo-") as tmp:
        root = workdir or Path(tmp)
        rig = DemoRig(root, narrate=narrate, use_broker=use_broker)
        try:
            narrate(
                "Terminal on simulated hardware; host "
                + (f"over MQTT at {rig.broker.url}" if rig.broker else "unreachable (no mosquitto)")
            )
            if console is not None:
                console.start(rig)
            scenes = play(rig, narrate, ride_only=ride_only)
            if console is not None:
                console.serve(rig)
        finally:
            if console is not None:
                console.stop()
            rig.close()
    return DemoReport(rig.online, scenes, time.monotonic() - began)
