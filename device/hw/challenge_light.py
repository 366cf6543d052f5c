"""The challenge light: a white or IR LED ring beside the camera, on its own GPIO through a
driver transistor, that plays the illumination challenge's random on/off code.

The pattern scheduler switches it at each bit boundary on the monotonic clock the camera
frames are stamped with, so the code's start time is all the shell needs to line frames
up with bits. Optional: `hardware.pins.challenge_light = false` on terminals without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from device.clock import Clock
from device.hw.outputs import PatternedOutput
from device.hw.patterns import OutputScheduler, sequence
from device.hw.pins import PinFactory


class ChallengeLight(PatternedOutput):
    def __init__(
        self,
        factory: PinFactory,
        pin: int,
        scheduler: OutputScheduler,
        clock: Clock,
        active_high: bool = True,
    ) -> None:
        super().__init__(factory, pin, scheduler, active_high, "challenge_light")
        self._clock = clock

    def play_code(self, code: Sequence[bool], bit_s: float) -> float:
        """Start the code now, one bit per bit_s, dark after it; returns the start time."""
        if not code or bit_s <= 0:
            raise ValueError("a challenge code needs bits and a positive bit length")
        start = self._clock.monotonic()
        self.play(sequence([(bool(bit), bit_s) for bit in code]))
        return start
