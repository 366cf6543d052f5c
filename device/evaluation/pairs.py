"""Verification pair lists: the LFW pairs format and a plain TSV of paths.

LFW: the first line is a count `n` or `folds<TAB>n`; then `Name<TAB>i<TAB>j` (same
person) or `Name1<TAB>i<TAB>Name2<TAB>j` (different), images at Name/Name_000i.jpg.
With folds, each fold is n same then n different lines, in order.
TSV: `path_a<TAB>path_b<TAB>same` (1 or 0), paths relative to the image folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from device.errors import BlinkpayError


class PairsError(BlinkpayError):
    """A pairs file that cannot be parsed."""


@dataclass(frozen=True)
class Pair:
    a: str  # image path relative to the image folder
    b: str
    same: bool
    fold: int | None  # None when the file has no folds


def lfw_path(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def _parse_lfw(lines: list[str], where: str) -> list[Pair]:
    head = lines[0].split()
    folds, per_class = (int(head[0]), int(head[1])) if len(head) == 2 else (None, int(head[0]))
    pairs = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t") if "\t" in line else line.split()
        index = len(pairs)
        fold = index // (2 * per_class) if folds else None
        if len(fields) == 3:
            pairs.append(
                Pair(lfw_path(fields[0], fields[1]), lfw_path(fields[0], fields[2]), True, fold)
            )
        elif len(fields) == 4:
            pairs.append(
                Pair(lfw_path(fields[0], fields[1]), lfw_path(fields[2], fields[3]), False, fold)
            )
        else:
            raise PairsError(f"{where}:{number}: expected 3 or 4 fields, got {len(fields)}")
    expected = 2 * per_class * (folds or 1)
    if len(pairs) != expected:
        raise PairsError(f"{where}: header promises {expected} pairs, file has {len(pairs)}")
    return pairs


def _parse_tsv(lines: list[str], where: str) -> list[Pair]:
    pairs = []
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if len(fields) != 3 or fields[2].strip() not in ("0", "1"):
            raise PairsError(f"{where}:{number}: expected path_a<TAB>path_b<TAB>0|1")
        pairs.append(Pair(fields[0], fields[1], fields[2].strip() == "1", None))
    return pairs


def read_pairs(path: Path) -> list[Pair]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise PairsError(f"{path}: cannot read pairs file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise PairsError(f"{path}: not a text file") from None
    lines = [line.rstrip("\r\n") for line in text.splitlines() if line.strip()]
    if not lines:
        raise PairsError(f"{path}: empty pairs file")
    head = lines[0].split()
    try:
        is_lfw = 1 <= len(head) <= 2 and all(int(field) > 0 for field in head)
    except ValueError:
        is_lfw = False
    pairs = _parse_lfw(lines, str(path)) if is_lfw else _parse_tsv(lines, str(path))
    if not pairs:
        raise PairsError(f"{path}: no pairs")
    return pairs


def pair_images(pairs: list[Pair]) -> list[str]:
    """Unique image paths (relative to the images folder) in first-seen order."""
    seen: dict[str, None] = {}
    for pair in pairs:
        seen.setdefault(pair.a, None)
        seen.setdefault(pair.b, None)
    return list(seen)
