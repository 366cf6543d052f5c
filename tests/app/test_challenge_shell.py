"""The challenge end to end below the pipeline: the light plays the code on simulated
GPIO, the simulated camera lights a live face (or not, for a screen), the runner collects
luminance and the core judges; the face book passes fresh passive verdicts on."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from device.clock import FakeClock
from device.core.challenge import ChallengeReason, make_code
from device.core.config import ChallengeConfig
from device.core.events import ChallengeDone, PassiveSeen, StartChallenge
from device.core.liveness import LivenessVerdict
from device.hw.camera.lighting import (
    Exposure,
    LiveFace,
    PrintFillingView,
    ScreenReplay,
    on_fraction,
)
from device.hw.config import HardwareConfig
from device.hw.devices import open_hardware
from device.shell.challenge import ChallengeRunner
from device.shell.face_book import FaceBook, FrameFaces
from device.vision.light import measure_light

FPS = 15.0
BOX = (120.0, 60.0, 200.0, 160.0)


def _scene() -> tuple[np.ndarray, np.ndarray]:
    rgb = np.full((240, 320, 3), 70, np.uint8)
    rgb[60:160, 120:200] = 160  # the face
    mask = np.zeros((240, 320), np.float32)
    mask[60:160, 120:200] = 1.0
    return rgb, mask


def _play(
    presentation, seed: int = 1, fps: float = FPS, bit_ms: int = 200
) -> tuple[ChallengeDone, list[str]]:
    clock = FakeClock()
    hardware = open_hardware(HardwareConfig(), clock, sim=True)
    light, sim = hardware.challenge_light, hardware.sim
    assert light is not None and sim is not None
    seen: list[str] = []
    cfg = ChallengeConfig(bit_ms=bit_ms)
    runner = ChallengeRunner(light, cfg, lambda what, d: seen.append(d["reason"]))
    rng = random.Random(seed)
    code = make_code(cfg.code_bits, lambda n: rng.randrange(n), runner.first_look)
    runner.start(StartChallenge(1, code, bit_ms))
    exposure = Exposure(frame_s=1 / fps, seed=seed)

    def light_on(t0: float, t1: float) -> float:
        history = [(t, level == light.active_high) for t, level in sim.history(light.pin)]
        return on_fraction(history, t0, t1)

    rgb, _ = _scene()
    events: list = []
    for _ in range(round(6 * fps)):
        clock.advance(1 / fps)
        hardware.scheduler.tick()
        frame = presentation.render(rgb, clock.monotonic(), light_on, exposure)
        face = SimpleNamespace(track_id=1, light=measure_light(frame, BOX))
        events += runner.frame(FrameFaces(clock.monotonic(), [face]))
        if events:
            break
    hardware.close()
    assert not runner.running and not light.is_active  # judged: the light is off again
    (done,) = events
    return done, seen


@pytest.mark.parametrize(("fps", "bit_ms"), [(15.0, 200), (30.0, 100)])
def test_a_live_face_follows_the_light_and_ends_the_code_early(fps: float, bit_ms: int) -> None:
    _, mask = _scene()
    done, seen = _play(LiveFace(mask), fps=fps, bit_ms=bit_ms)
    assert done.verdict.passed and seen == ["followed"]
    assert done.verdict.contrast > 0.05
    assert done.verdict.bits == 15  # the first look: 15 of the 20 bits played
    # the verdict comes once bit 15 has reached the camera at the longest lag tried
    started = FakeClock().monotonic()  # the runner started the code at the clock's start
    assert done.now - started == pytest.approx(15 * bit_ms / 1000 + 3 / fps, abs=1 / fps)


@pytest.mark.parametrize("fps", [15.0, 30.0])
@pytest.mark.parametrize("presentation", [ScreenReplay(), PrintFillingView()])
def test_a_screen_or_a_print_filling_the_view_does_not(presentation, fps: float) -> None:
    done, seen = _play(presentation, fps=fps, bit_ms=round(3000 / fps))
    assert not done.verdict.passed and seen == ["not_followed"]
    assert done.verdict.reason == ChallengeReason.NOT_FOLLOWED
    assert done.verdict.bits == 20  # no look passed: the code played to its end


def test_no_frames_at_all_is_judged_on_the_tick_and_refused() -> None:
    clock = FakeClock()
    hardware = open_hardware(HardwareConfig(), clock, sim=True)
    assert hardware.challenge_light is not None
    runner = ChallengeRunner(hardware.challenge_light, ChallengeConfig())
    runner.start(StartChallenge(1, (True, False) * 8, 200))
    assert runner.tick(clock.monotonic() + 1.0) == []
    (done,) = runner.tick(clock.monotonic() + 5.0)
    assert done.verdict.reason == ChallengeReason.NO_FACE and not done.verdict.passed
    hardware.close()


def test_on_fraction_reads_a_pin_history() -> None:
    history = [(0.0, False), (1.0, True), (2.0, False)]
    assert on_fraction(history, 0.5, 1.5) == pytest.approx(0.5)
    assert on_fraction(history, 1.2, 1.8) == pytest.approx(1.0)
    assert on_fraction(history, 2.5, 3.0) == 0.0


class _NoBlink:
    def observe(self, timestamp: float, face: object) -> LivenessVerdict | None:
        return None


def test_the_face_book_passes_each_fresh_passive_verdict_once() -> None:
    book = FaceBook(_NoBlink)

    def face(verdict: str, at: float) -> SimpleNamespace:
        return SimpleNamespace(
            track_id=3,
            embedding=None,
            quality=SimpleNamespace(ok=True),
            passive=SimpleNamespace(verdict=verdict, timestamp=at),
        )

    seen = []
    for t, verdict, scored_at in [
        (0.0, "real", 0.0),
        (0.07, "real", 0.0),  # carried between runs: not news
        (0.2, "spoof", 0.2),
        (0.27, "no_verdict", 0.27),  # never passed on
    ]:
        seen += [e for e in book.frame(FrameFaces(t, [face(verdict, scored_at)]), 3)
                 if isinstance(e, PassiveSeen)]  # fmt: skip
    assert seen == [PassiveSeen(0.0, 3, True), PassiveSeen(0.2, 3, False)]


def test_the_config_refuses_a_code_longer_than_the_intent_window(tmp_path) -> None:
    from device.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text("[session]\nintent_timeout_s = 3.0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"session\.intent_timeout_s"):
        load_config(path, env={})
    path.write_text(
        "[session]\nintent_timeout_s = 3.0\n[hardware.pins]\nchallenge_light = false\n",
        encoding="utf-8",
    )
    assert load_config(path, env={}).hardware.pins.challenge_light is None


def test_bits_stretch_when_the_vision_processes_fewer_frames_than_they_need() -> None:
    """Configured for 30 fps (100 ms bits) on a host that processes 15 frames a second:
    three processed frames a bit is 200 ms, up to twice the configured bit."""
    clock = FakeClock()
    hardware = open_hardware(HardwareConfig(), clock, sim=True)
    assert hardware.challenge_light is not None
    runner = ChallengeRunner(hardware.challenge_light, ChallengeConfig(bit_ms=100))
    assert runner.bit_ms() == 100  # nothing measured yet
    for i in range(20):
        runner.frame(FrameFaces(1000.0 + i / 15, []))
    assert runner.bit_ms() == 200
    for i in range(30):
        runner.frame(FrameFaces(1010.0 + i / 5, []))  # 5 fps: capped at twice the bit
    assert runner.bit_ms() == 200
    for i in range(30):
        runner.frame(FrameFaces(1020.0 + i / 30, []))
    assert runner.bit_ms() == 100
    hardware.close()
