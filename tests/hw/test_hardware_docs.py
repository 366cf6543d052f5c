"""The wiring documents say what the code does: the default pin map, the header pins."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from device.hw.config import PinMap
from device.paths import REPO_ROOT

HARDWARE = REPO_ROOT / "hardware"


def _wiring_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wiring_svg", HARDWARE / "wiring_svg.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wiring_svg_is_drawn_from_the_default_pin_map() -> None:
    committed = (HARDWARE / "wiring.svg").read_text(encoding="utf-8")
    assert committed == _wiring_module().wiring_svg(), "run: python hardware/wiring_svg.py"


def test_pinout_table_lists_every_default_pin_at_its_header_pin() -> None:
    header = _wiring_module().BCM_TO_HEADER
    rows = re.findall(
        r"^\| [^|]+ \| `(\w+(?:\[\d\])?)` \| (\d+) \| (\d+) \|", _text("pinout.md"), re.M
    )
    documented = {key: (int(bcm), int(pin)) for key, bcm, pin in rows}
    pins = PinMap()
    expected = {f"keypad_rows[{i}]": p for i, p in enumerate(pins.keypad_rows)}
    expected |= {f"keypad_cols[{i}]": p for i, p in enumerate(pins.keypad_cols)}
    for role in (
        "led_green",
        "led_amber",
        "led_red",
        "led_prompt",
        "buzzer",
        "relay",
        "passage",
        "challenge_light",
    ):
        expected[role] = getattr(pins, role)
    assert documented == {key: (bcm, header[bcm]) for key, bcm in expected.items()}


def test_boot_config_holds_the_relay_pin_at_its_safe_level() -> None:
    lines = [line for line in _text("config.txt").splitlines() if line.startswith("gpio=")]
    assert f"gpio={PinMap().relay}=op,dl" in lines


def _text(name: str) -> str:
    return Path(HARDWARE / name).read_text(encoding="utf-8")
