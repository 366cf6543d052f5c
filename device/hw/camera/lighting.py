"""What the camera sees of the challenge light, for the simulated camera (demo, tests).

The light is a ring beside the lens. What it adds to a surface falls with the square of
the distance, so a live face at arm's length brightens several times more than a wall
a few metres behind it; that is the whole of what the challenge tests. Three kinds of
presentation are modelled:

- `LiveFace`: a person; the face (a soft mask) is near and diffusely reflects the light,
  the rest of the view is far and gets a tenth as much;
- `PrintFillingView`: a matte print held up so that it fills the view; it reflects the
  light evenly (one distance), so face and background brighten together;
- `ScreenReplay`: a phone or monitor filling the view, replaying a recording: it emits
  its own light, with a glow that drifts on its own (content, backlight), and its glass
  reflects the ring specularly, away from the lens (a small even part at most).

Each frame sees the light as it was during its exposure, one frame before the frame is
delivered (the camera's pipeline delay), plus sensor noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

# fraction of the exposure window [t0, t1] the light was on
LightOn = Callable[[float, float], float]

NEAR_GAIN = 0.15  # the ring adds 15 % to a face at arm's length (indoor light): assumed
FAR_RATIO = 0.1  # a background ~3x further away gets about a tenth of that


def on_fraction(history: Sequence[tuple[float, bool]], t0: float, t1: float) -> float:
    """How much of [t0, t1] an output was active, from its (time, active) changes."""
    if t1 <= t0:
        return 0.0
    on_time, level, since = 0.0, False, t0
    for when, active in history:
        if when > t1:
            break
        if when > t0 and level:
            on_time += when - max(since, t0)
        level, since = active, max(when, t0)
    if level:
        on_time += t1 - since
    return min(1.0, max(0.0, on_time / (t1 - t0)))


@dataclass
class Exposure:
    """When a frame stamped t saw the light, and the sensor's noise."""

    frame_s: float  # one frame: exposure length and pipeline delay
    noise: float = 2.0  # grey levels, per pixel
    seed: int = 0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def lit(self, light_on: LightOn, t: float) -> float:
        return light_on(t - 2 * self.frame_s, t - self.frame_s)

    def finish(self, image: np.ndarray) -> np.ndarray:
        noisy = image + self.rng.normal(0.0, self.noise, size=image.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)


@dataclass
class LiveFace:
    face_mask: np.ndarray  # HxW float32 0..1: the near, reflecting face
    gain: float = NEAR_GAIN

    def render(self, rgb: np.ndarray, t: float, light_on: LightOn, cam: Exposure) -> np.ndarray:
        lit = cam.lit(light_on, t) * self.gain
        reach = FAR_RATIO + (1.0 - FAR_RATIO) * self.face_mask
        return cam.finish(rgb.astype(np.float32) * (1.0 + lit * reach[..., None]))


@dataclass
class PrintFillingView:
    gain: float = NEAR_GAIN

    def render(self, rgb: np.ndarray, t: float, light_on: LightOn, cam: Exposure) -> np.ndarray:
        lit = cam.lit(light_on, t) * self.gain
        return cam.finish(rgb.astype(np.float32) * (1.0 + lit))


@dataclass
class ScreenReplay:
    glow_step: float = 0.02  # the screen's own brightness drifts by this much a frame
    glass: float = 0.01  # the even part of the ring's light its glass sends back
    _glow: float = 1.0

    def render(self, rgb: np.ndarray, t: float, light_on: LightOn, cam: Exposure) -> np.ndarray:
        step = cam.rng.normal(0.0, self.glow_step)
        self._glow = float(np.clip(self._glow + step, 0.85, 1.15))  # independent of the code
        lit = cam.lit(light_on, t) * self.glass
        return cam.finish(rgb.astype(np.float32) * (self._glow + lit))


Presentation = LiveFace | PrintFillingView | ScreenReplay
