"""The published project: licence files present, no machine's absolute paths in the tree,
and every relative link in the documentation resolves inside the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A path into someone's machine: a home, root's home, a CI work tree. System paths the
# docs name on purpose (/etc/blinkpay, /var/lib/blinkpay, /opt/blinkpay, /usr/..., /dev,
# /proc, /tmp) are not machine-specific and are allowed.
MACHINE_PATH = r"(^|[^A-Za-z0-9_.~-])/(work|home|root|Users|mnt/c)/[A-Za-z0-9_.-]"
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_licence_files_are_present() -> None:
    licence = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    for name in ("NOTICE", "SECURITY.md", "CONTRIBUTING.md"):
        assert (REPO / name).stat().st_size > 0, name


def test_no_absolute_machine_paths_in_the_tree() -> None:
    _tracked_files()  # skip outside a git checkout
    result = subprocess.run(
        ["git", "-C", str(REPO), "grep", "-nIE", "--untracked", MACHINE_PATH],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout == "", "machine paths found:\n" + result.stdout


def _links(markdown: Path) -> list[str]:
    text = markdown.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    return LINK.findall(text)


def _doc_files() -> list[Path]:
    return sorted(REPO / name for name in _tracked_files() if name.endswith(".md"))


def test_the_docs_are_found() -> None:
    names = {path.relative_to(REPO).as_posix() for path in _doc_files()}
    assert {"README.md", "docs/operations.md"} <= names


@pytest.mark.parametrize(
    "markdown",
    _doc_files() if (REPO / ".git").exists() else [],
    ids=lambda p: p.relative_to(REPO).as_posix(),
)
def test_relative_links_resolve_inside_the_repository(markdown: Path) -> None:
    broken = []
    for target in _links(markdown):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor in the same page
        path = (markdown.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(REPO) or not path.exists():
            broken.append(target)
    assert not broken, f"{markdown.relative_to(REPO)}: links outside the repo or broken: {broken}"
