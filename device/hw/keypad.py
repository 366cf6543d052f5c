"""The 4x3 matrix keypad: scanning (shell) and a clock-driven debouncer (pure).

Scanning drives one row low at a time and reads the three columns, which are pulled up;
a pressed key joins its row to its column, so that column reads low. Rows that are not
being scanned are left as inputs (high impedance) rather than driven high, so two keys
in one column never short a high row to a low one.

Press rule (what the debouncer reports), chosen so a wrong digit is never entered:
- the set of keys down must be the same for `debounce_s` before it counts (bounce, noise);
- a press fires when that settled set goes from no key to exactly one key;
- while two or more keys are down nothing fires, and nothing fires again until every key
  is released. This rejects ghost keys (three keys at the corners of a rectangle read as a
  fourth on a diode-less matrix) and ambiguous chords; a rolled-over key is dropped, which
  the masked feedback makes visible, instead of entering a digit the user may not have meant;
- holding a key fires once (no auto-repeat).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from device.clock import Clock
from device.core.pin_entry import CANCEL_KEY, ENTER_KEY, KEYPAD_LAYOUT, KeyKind
from device.hw.pins import PinFactory
from device.hw.pins_sim import SimPinFactory


@dataclass(frozen=True)
class KeyEvent:
    key: str
    at: float  # clock time the press was confirmed

    @property
    def kind(self) -> KeyKind:
        if self.key == CANCEL_KEY:
            return "cancel"
        if self.key == ENTER_KEY:
            return "enter"
        return "digit"

    def __repr__(self) -> str:
        # Digits may be PIN digits: never let a log line show which one.
        shown = self.key if self.kind != "digit" else "<digit>"
        return f"KeyEvent(key={shown!r}, at={self.at:.3f})"

    __str__ = __repr__


class KeyDebouncer:
    """Pure press logic: feed it each scan's set of keys down and the scan time."""

    def __init__(self, debounce_s: float) -> None:
        self.debounce_s = debounce_s
        self._candidate: frozenset[str] = frozenset()
        self._candidate_since = float("-inf")
        self._settled: frozenset[str] = frozenset()

    @property
    def settled(self) -> frozenset[str]:
        return self._settled

    def update(self, raw: frozenset[str], now: float) -> list[str]:
        """Keys pressed (0 or 1 of them) as of this scan."""
        if raw != self._candidate:
            self._candidate, self._candidate_since = raw, now
            return []
        if raw == self._settled or now - self._candidate_since < self.debounce_s:
            return []
        previous, self._settled = self._settled, raw
        if not previous and len(raw) == 1:
            return [next(iter(raw))]
        return []


def key_at(layout: Sequence[str], row: int, col: int) -> str:
    return layout[row][col]


class Keypad:
    """Scans the matrix through a PinFactory; `poll()` is one step, `start()` a thread."""

    def __init__(
        self,
        factory: PinFactory,
        rows: Sequence[int],
        cols: Sequence[int],
        clock: Clock,
        debounce_ms: int = 20,
        scan_interval_ms: int = 4,
        layout: Sequence[str] = KEYPAD_LAYOUT,
    ) -> None:
        if len(layout) != len(rows) or any(len(line) != len(cols) for line in layout):
            raise ValueError(f"layout {layout!r} does not fit {len(rows)}x{len(cols)} pins")
        self._factory, self._rows, self._cols, self._layout = (
            factory,
            list(rows),
            list(cols),
            layout,
        )
        self._clock = clock
        self._scan_interval_s = scan_interval_ms / 1000.0
        self.debouncer = KeyDebouncer(debounce_ms / 1000.0)
        self.events: queue.Queue[KeyEvent] = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for col in self._cols:
            factory.setup_input(col, "up")
        for row in self._rows:
            factory.setup_input(row, "off")

    def scan(self) -> frozenset[str]:
        """The keys that read as down in one pass over the rows."""
        down: set[str] = set()
        for r, row in enumerate(self._rows):
            self._factory.setup_output(row, False)
            try:
                for c, col in enumerate(self._cols):
                    if not self._factory.read(col):
                        down.add(key_at(self._layout, r, c))
            finally:
                self._factory.setup_input(row, "off")
        return frozenset(down)

    def poll(self) -> list[KeyEvent]:
        raw = self.scan()
        now = self._clock.monotonic()
        return [KeyEvent(key, now) for key in self.debouncer.update(raw, now)]

    def stuck_keys(self, scans: int = 5) -> frozenset[str]:
        """Keys that read as down on every one of `scans` passes (for the self-test)."""
        stuck = self.scan()
        for _ in range(scans - 1):
            if not stuck:
                break
            self._clock.sleep(self._scan_interval_s)
            stuck &= self.scan()
        return stuck

    def start(self, on_key: Callable[[KeyEvent], None] | None = None) -> None:
        """Scan in a thread; each press goes to `on_key` if given, else to `events`."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                for event in self.poll():
                    if on_key is not None:
                        on_key(event)
                    elif not self.events.full():  # nobody reading: drop, never block scanning
                        self.events.put_nowait(event)
                self._stop.wait(self._scan_interval_s)

        self._thread = threading.Thread(target=loop, name="keypad-scan", daemon=True)
        self._thread.start()

    def get(self, timeout: float | None = None) -> KeyEvent | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None


class SimKeypad:
    """The fingers for a keypad on a SimPinFactory: press and release keys by label."""

    def __init__(
        self,
        factory: SimPinFactory,
        rows: Sequence[int],
        cols: Sequence[int],
        layout: Sequence[str] = KEYPAD_LAYOUT,
    ) -> None:
        self._factory = factory
        self._wires = {
            key_at(layout, r, c): (row, col)
            for r, row in enumerate(rows)
            for c, col in enumerate(cols)
        }

    @property
    def keys(self) -> list[str]:
        return list(self._wires)

    def set(self, key: str, down: bool) -> None:
        row, col = self._wires[key]
        self._factory.set_switch(row, col, down)

    def press(self, key: str) -> None:
        self.set(key, True)

    def release(self, key: str) -> None:
        self.set(key, False)
