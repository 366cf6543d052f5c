"""Open-set identification lists: gallery/probe files and the LFW view-1 split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from device.errors import BlinkpayError


class ListError(BlinkpayError):
    """A gallery or probe list that cannot be parsed."""


@dataclass(frozen=True)
class Probe:
    path: str  # relative to the root folder; its parent folder is the identity
    mated: bool


def identity_of(path: str) -> str:
    parent = Path(path).parent.name
    if not parent:
        raise ListError(f"{path}: no parent folder to take the identity from")
    return parent


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ListError(f"{path}: cannot read list ({exc})") from None
    rows = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not rows:
        raise ListError(f"{path}: empty list")
    return rows


def read_gallery(path: Path) -> list[str]:
    out = []
    for number, fields in _lines(path):
        if len(fields) != 1:
            raise ListError(f"{path}:{number}: expected one image path")
        identity_of(fields[0])
        out.append(fields[0])
    return out


def read_probes(path: Path) -> list[Probe]:
    out = []
    for number, fields in _lines(path):
        if len(fields) != 2 or fields[1] not in ("mated", "nonmated"):
            raise ListError(f"{path}:{number}: expected PATH mated|nonmated")
        identity_of(fields[0])
        out.append(Probe(fields[0], fields[1] == "mated"))
    return out


def read_same_person(path: Path) -> dict[str, str]:
    """`NAME OTHER_NAME` per line: folders holding the same person (a list's label errors);
    maps the second name onto the first."""
    out = {}
    for number, fields in _lines(path):
        if len(fields) != 2 or fields[0] == fields[1]:
            raise ListError(f"{path}:{number}: expected two different folder names")
        out[fields[1]] = fields[0]
    return out


def lfw_lists(
    images: Path, people: set[str] | None = None
) -> tuple[list[str], list[Probe], list[str]]:
    """LFW view-1 split (shared/data/README.md): the first image of each person with two
    or more is enrolled, their other images are mated probes; people with a single image
    are non-mated probes. With `people`, only they are enrolled and searched, and the
    first image of every other person is a distractor (enrolled, never searched)."""
    gallery: list[str] = []
    probes: list[Probe] = []
    distractors: list[str] = []
    for person in sorted(p for p in images.iterdir() if p.is_dir()):
        if people is not None and person.name not in people:
            first = min((f.name for f in person.iterdir() if f.suffix == ".jpg"), default=None)
            if first is not None:
                distractors.append(f"{person.name}/{first}")
            continue
        files = sorted(f"{person.name}/{f.name}" for f in person.iterdir() if f.suffix == ".jpg")
        if len(files) >= 2:
            gallery.append(files[0])
            probes.extend(Probe(f, True) for f in files[1:])
        elif files:
            probes.append(Probe(files[0], False))
    return gallery, probes, distractors


def write_lists(
    gallery: list[str], probes: list[Probe], out_dir: Path, distractors: list[str] | None = None
) -> list[Path]:
    """gallery.txt and probes.txt (and distractors.txt when there are any) in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    g, p = out_dir / "gallery.txt", out_dir / "probes.txt"
    g.write_text("".join(f"{path}\n" for path in gallery))
    p.write_text("".join(f"{x.path}\t{'mated' if x.mated else 'nonmated'}\n" for x in probes))
    written = [g, p]
    if distractors:
        d = out_dir / "distractors.txt"
        d.write_text("".join(f"{path}\n" for path in distractors))
        written.append(d)
    return written
