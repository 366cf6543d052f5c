"""Pairs files (LFW and TSV) and identification lists: parsing and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.errors import BlinkpayError
from device.evaluation.gallery import lfw_lists, read_gallery, read_probes
from device.evaluation.pairs import read_pairs


def _write(tmp_path: Path, text: str, name: str = "list.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_lfw_pairs_with_count_header(tmp_path: Path) -> None:
    pairs = read_pairs(_write(tmp_path, "1\nAnn\t1\t2\nAnn\t3\tBob_B\t4\n"))
    assert [(p.a, p.b, p.same, p.fold) for p in pairs] == [
        ("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", True, None),
        ("Ann/Ann_0003.jpg", "Bob_B/Bob_B_0004.jpg", False, None),
    ]


def test_lfw_pairs_with_folds(tmp_path: Path) -> None:
    lines = ["2\t1"] + ["A\t1\t2", "A\t1\tB\t1"] * 2
    pairs = read_pairs(_write(tmp_path, "\n".join(lines)))
    assert [p.fold for p in pairs] == [0, 0, 1, 1]


def test_tsv_pairs(tmp_path: Path) -> None:
    pairs = read_pairs(_write(tmp_path, "x/a.jpg\tx/b.jpg\t1\nx/a.jpg\ty/c.png\t0\n"))
    assert [(p.same, p.b) for p in pairs] == [(True, "x/b.jpg"), (False, "y/c.png")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("3\nA\t1\t2\n", "promises 6 pairs"),
        ("1\nA\t1\nB\t1\t2\n", "expected 3 or 4 fields"),
        ("a.jpg\tb.jpg\tyes\n", "path_a"),
    ],
)
def test_bad_pairs_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BlinkpayError, match=message):
        read_pairs(_write(tmp_path, text))


def test_gallery_and_probe_lists(tmp_path: Path) -> None:
    assert read_gallery(_write(tmp_path, "ann/1.jpg\nbob/1.jpg\n")) == ["ann/1.jpg", "bob/1.jpg"]
    probes = read_probes(_write(tmp_path, "ann/2.jpg mated\ncat/1.jpg\tnonmated\n"))
    assert [(p.path, p.mated) for p in probes] == [("ann/2.jpg", True), ("cat/1.jpg", False)]
    with pytest.raises(BlinkpayError, match=r"PATH mated\|nonmated"):
        read_probes(_write(tmp_path, "ann/2.jpg yes\n"))
    with pytest.raises(BlinkpayError, match="parent folder"):
        read_gallery(_write(tmp_path, "loose.jpg\n"))


def test_lfw_split_enrols_first_image_of_people_with_two(tmp_path: Path) -> None:
    for person, count in (("Ann", 3), ("Bob", 1)):
        (tmp_path / person).mkdir()
        for n in range(1, count + 1):
            (tmp_path / person / f"{person}_{n:04d}.jpg").write_bytes(b"")
    gallery, probes, distractors = lfw_lists(tmp_path)
    assert gallery == ["Ann/Ann_0001.jpg"] and distractors == []
    assert [(p.path, p.mated) for p in probes] == [
        ("Ann/Ann_0002.jpg", True),
        ("Ann/Ann_0003.jpg", True),
        ("Bob/Bob_0001.jpg", False),
    ]
    # restricted to some people: everyone else's first image is a distractor
    (tmp_path / "Cy").mkdir()
    for n in (2, 1):
        (tmp_path / "Cy" / f"Cy_{n:04d}.jpg").write_bytes(b"")
    gallery, probes, distractors = lfw_lists(tmp_path, {"Ann"})
    assert gallery == ["Ann/Ann_0001.jpg"] and len(probes) == 2
    assert distractors == ["Bob/Bob_0001.jpg", "Cy/Cy_0001.jpg"]


def test_same_person_list_maps_the_second_name_onto_the_first(tmp_path: Path) -> None:
    from device.evaluation.gallery import read_same_person

    aliases = read_same_person(_write(tmp_path, "Ann Anne\nBob\tRobert\n"))
    assert aliases == {"Anne": "Ann", "Robert": "Bob"}
    with pytest.raises(BlinkpayError, match="two different folder names"):
        read_same_person(_write(tmp_path, "Ann Ann\n"))
    with pytest.raises(BlinkpayError, match="two different folder names"):
        read_same_person(_write(tmp_path, "Ann\n"))
