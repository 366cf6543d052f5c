"""docs/vending.md says what the code does: every counted reason, every scenario."""

from __future__ import annotations

import re

from device.paths import REPO_ROOT
from device.vending.scenarios import scenarios

DOC = (REPO_ROOT / "docs" / "vending.md").read_text(encoding="utf-8")


def counted_reasons() -> set[str]:
    reasons: set[str] = set()
    for path in (REPO_ROOT / "device" / "vending").rglob("*.py"):
        reasons |= set(re.findall(r'stats\["(\w+)"\]', path.read_text(encoding="utf-8")))
    return reasons


def test_every_counted_reason_is_documented() -> None:
    assert counted_reasons() >= {"bad_checksum", "over_max_price", "out_of_sequence"}
    missing = sorted(r for r in counted_reasons() if f"`{r}`" not in DOC)
    assert missing == []


def test_every_scenario_is_documented() -> None:
    missing = [name for name, _, _ in scenarios(5000) if f"| {name} |" not in DOC]
    assert missing == []
