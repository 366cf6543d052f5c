"""The house's layers hold: import-linter's contracts (pyproject.toml, docs/architecture.md)
pass on the tree, and they do catch a wrong-way import when one is added."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# What device.core may import besides itself: the standard library's pure parts and numpy.
CORE_MAY_IMPORT = {"numpy"}
CORE_MUST_NOT = {"sqlite3", "socket", "subprocess", "threading", "asyncio", "os", "io", "time"}

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (the dev extra has it)"
)


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_contracts_hold_on_the_tree() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wrong_way_import_is_caught(tmp_path: Path) -> None:
    for part in ("device", "backend"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    # the core reaching up into the config (and through it pydantic): both contracts object
    (tmp_path / "device" / "core" / "upward.py").write_text(
        "from device.config import Config\n\nSEEN = Config\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "device.core.upward -> device.config" in result.stdout
    assert "BROKEN" in result.stdout


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_core_imports_only_itself_the_standard_library_and_numpy() -> None:
    allowed = set(sys.stdlib_module_names) - CORE_MUST_NOT
    for path in sorted((REPO / "device" / "core").rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if name == "device.core" or name.startswith("device.core."):
                continue
            assert top != "device", f"{path.name} imports {name}"
            assert top in allowed or top in CORE_MAY_IMPORT or top == "__future__", (
                f"{path.name} imports {name}: device.core is pure (docs/architecture.md)"
            )


def test_nothing_but_the_entry_point_imports_the_cli() -> None:
    for path in sorted((REPO / "device").rglob("*.py")):
        if (REPO / "device" / "cli") in path.parents:
            continue
        for name in _imports(path):
            assert not name.startswith("device.cli"), f"{path} imports {name}"
    for path in sorted((REPO / "backend").rglob("*.py")):
        for name in _imports(path):
            assert not name.startswith(("device.cli", "device.demo")), f"{path} imports {name}"
