"""Draws hardware/wiring.svg from the default pin map, so the diagram cannot drift from the
code: `python hardware/wiring_svg.py` rewrites it; tests/hw/test_hardware_docs.py checks it."""

from __future__ import annotations

import sys
from pathlib import Path
from xml.sax.saxutils import escape

from device.hw.config import PinMap

# BCM number -> physical pin on the 40-pin header (the same on Pi 4 and Pi 5).
BCM_TO_HEADER = {
    2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32, 13: 33,
    14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16, 24: 18,
    25: 22, 26: 37, 27: 13,
}  # fmt: skip
GROUND_PINS = (6, 9, 14, 20, 25, 30, 34, 39)
POWER_PINS = {1: "3V3", 17: "3V3", 2: "5V", 4: "5V"}

# What each role connects to, and through what (the bill of materials names the parts).
PARTS = {
    "keypad_row": "keypad row {n} (driven low one at a time)",
    "keypad_col": "keypad column {n} (input, pull-up)",
    "led_green": "green LED + 330 ohm to GND",
    "led_amber": "amber LED + 330 ohm to GND",
    "led_red": "red LED + 330 ohm to GND",
    "led_prompt": "prompt light: NPN/MOSFET driver, LED ring",
    "buzzer": "piezo buzzer via NPN driver",
    "relay": "relay module IN (opto-isolated, 5 V supply)",
    "passage": "gate PASS contact to GND (pull-up)",
    "challenge_light": "challenge light: N-MOSFET driver, LED ring",
}


def describe(role: str) -> str:
    for prefix in ("keypad_row", "keypad_col"):
        if role.startswith(prefix):
            return PARTS[prefix].format(n=int(role[len(prefix) :]) + 1)
    return PARTS[role]


def wiring_svg(pins: PinMap | None = None) -> str:
    roles = {pin: role for role, pin in (pins or PinMap()).named_pins().items()}
    rows = []
    for physical in range(1, 41):
        bcm = next((b for b, p in BCM_TO_HEADER.items() if p == physical), None)
        if physical in GROUND_PINS:
            label, use = "GND", "ground for LEDs, drivers, relay module, PASS contact"
        elif physical in POWER_PINS:
            label, use = POWER_PINS[physical], ("relay module VCC" if physical == 2 else "")
        else:
            label = f"BCM {bcm}" if bcm is not None else "ID"
            use = describe(roles[bcm]) if bcm in roles else ""
        rows.append((physical, label, use))
    height = 20 * 20 + 80
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="980" height="{height}" '
        'font-family="monospace" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="20" y="24" font-size="16">blinkpay default wiring (40-pin header, '
        "BCM numbering; every pin is configurable in [hardware.pins])</text>",
        '<rect x="420" y="40" width="140" height="410" fill="#2e7d32" rx="6"/>',
    ]
    for physical, label, use in rows:
        odd = physical % 2 == 1
        y = 60 + ((physical - 1) // 2) * 20
        x_pin = 460 if odd else 520
        used = bool(use)
        colour = "#fdd835" if used else "#bdbdbd"  # yellow: wired by default
        out.append(f'<circle cx="{x_pin}" cy="{y}" r="6" fill="{colour}"/>')
        out.append(
            f'<text x="{x_pin + (-14 if odd else 14)}" y="{y + 4}" fill="white" '
            f'text-anchor="{"end" if odd else "start"}" font-size="9">{physical}</text>'
        )
        # Odd pins sit on the left edge of the header, labels read outward from the pin.
        if odd:
            text, x_text, anchor, x_line = f"{use}  {label}", 410, "end", 420
        else:
            text, x_text, anchor, x_line = f"{label}  {use}", 570, "start", 560
        text = escape(text.strip())
        if used:
            out.append(
                f'<line x1="{x_pin}" y1="{y}" x2="{x_line}" y2="{y}" stroke="#fdd835" '
                'stroke-width="2"/>'
            )
        out.append(f'<text x="{x_text}" y="{y + 4}" text-anchor="{anchor}">{text}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    target = Path(__file__).with_name("wiring.svg")
    target.write_text(wiring_svg(), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
