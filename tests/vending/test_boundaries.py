"""device/vending is an adapter room: it may use the core, the clock and the errors, and
nothing else of the terminal (the shell wires it in, not the other way round)."""

from __future__ import annotations

import ast
from pathlib import Path

from device.paths import REPO_ROOT

ALLOWED = ("device.core", "device.clock", "device.errors", "device.vending")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_vending_imports_only_what_an_adapter_may() -> None:
    offending = {
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in (REPO_ROOT / "device" / "vending").rglob("*.py")
        for name in imported_modules(path)
        if name.startswith("device") and not name.startswith(ALLOWED)
    }
    assert offending == set()


def test_the_mdb_protocol_does_no_io() -> None:
    io = {"os", "select", "serial", "socket", "threading", "time", "termios"}
    for path in (REPO_ROOT / "device" / "vending" / "mdb").rglob("*.py"):
        assert imported_modules(path) & io == set(), path.name
