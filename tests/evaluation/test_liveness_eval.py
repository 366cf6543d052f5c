"""`blinkpay eval liveness`: finding samples, replaying stills, the ISO/IEC 30107-3 sums,
and the whole command on real pictures (demo portraits; the shared data when present)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.cli import main
from device.errors import BlinkpayError
from device.evaluation import liveness as ev


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_data_folder_clips_are_live_and_stills_are_attacks(tmp_path: Path) -> None:
    _touch(tmp_path / "clips" / "a.mp4")
    _touch(tmp_path / "clips" / "b.AVI")
    _touch(tmp_path / "seq" / "fps.txt", b"25")
    _touch(tmp_path / "seq" / "0001.png")  # a frame of the clip folder, not a still
    _touch(tmp_path / "attack-photos" / "image_F1.jpg")
    _touch(tmp_path / "attack-photos" / "image_T1.jpg")
    _touch(tmp_path / "yalefaces" / "subject01" / "wink.gif")
    _touch(tmp_path / "loose.png")
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / ".hidden" / "x.jpg")
    found = {s.path.relative_to(tmp_path).as_posix(): s for s in ev.samples_under(tmp_path)}
    assert set(found) == {
        "clips/a.mp4",
        "clips/b.AVI",
        "seq",
        "attack-photos/image_F1.jpg",
        "attack-photos/image_T1.jpg",
        "yalefaces/subject01/wink.gif",
        "loose.png",
    }
    assert [k for k, s in found.items() if s.live] == ["clips/a.mp4", "clips/b.AVI", "seq"]
    assert found["attack-photos/image_F1.jpg"].species == "print"
    assert found["attack-photos/image_T1.jpg"].species == "still_of_live_person"
    assert found["yalefaces/subject01/wink.gif"].species == "still_face"
    assert found["loose.png"].species == "still:still"
    assert found["seq"].kind == "frames"


def test_live_and_attack_folders_take_each_entry_as_a_sample(tmp_path: Path) -> None:
    _touch(tmp_path / "att" / "phone.mov")
    _touch(tmp_path / "att" / "frames_of_screen" / "1.png")
    _touch(tmp_path / "att" / "print.jpg")
    _touch(tmp_path / "att" / "README")
    samples = {s.path.name: s for s in ev.samples_in(tmp_path / "att", live=False)}
    assert {n: (s.kind, s.species) for n, s in samples.items()} == {
        "phone.mov": ("video", "video_replay"),
        "frames_of_screen": ("frames", "frames_replay"),
        "print.jpg": ("still", "still:still"),
    }
    with pytest.raises(BlinkpayError):
        ev.samples_in(tmp_path / "missing", live=True)
    with pytest.raises(BlinkpayError):
        ev.samples_under(tmp_path / "missing")


def test_still_replay_jitters_reproducibly() -> None:
    rng = np.random.default_rng(1)
    still = rng.integers(0, 255, size=(60, 80, 3), dtype=np.uint8)
    first = list(ev.still_frames(still, 5, seed=7))
    again = list(ev.still_frames(still, 5, seed=7))
    assert [t for t, _ in first] == pytest.approx([0, 1 / 15, 2 / 15, 3 / 15, 4 / 15])
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(first, again, strict=True))
    assert not np.array_equal(first[0][1], first[1][1])  # the hand moves
    assert all(f.shape == still.shape and f.dtype == np.uint8 for _, f in first)


def _row(truth: str, decision: str, species: str | None = None) -> dict:
    return {"truth": truth, "decision": decision, "species": species}


def test_apcer_per_species_and_bpcer() -> None:
    rows = [
        _row("live", "accept"),
        _row("live", "refuse"),
        _row("live", "accept"),
        _row("live", "accept"),
        _row("attack", "refuse", "print"),
        _row("attack", "refuse", "print"),
        _row("attack", "accept", "screen_still"),
        _row("attack", "refuse", "screen_still"),
    ]
    summary = ev.summarise(rows)
    assert summary["bpcer"] == 0.25
    assert summary["apcer_by_species"]["print"]["apcer"] == 0.0
    assert summary["apcer_by_species"]["screen_still"]["apcer"] == 0.5
    assert summary["apcer"] == 0.5  # the worst species
    assert summary["live"] == {"samples": 4, "refused": 1}
    assert summary["attack"] == {"samples": 4, "accepted": 1}
    empty = ev.summarise([])
    assert empty["bpcer"] is None and empty["apcer"] is None


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert main(["eval", "liveness", "--data", str(tmp_path / "nope")]) != 0
    assert main(["eval", "liveness", "--data", str(tmp_path), "--live", str(tmp_path)]) != 0
    assert main(["eval", "liveness", "--data", str(tmp_path)]) != 0  # nothing in it
    assert main(["eval", "liveness", "--frames", "2"]) != 0
    assert "Traceback" not in capsys.readouterr().err


def test_whole_command_on_demo_portraits(tmp_path: Path, capsys) -> None:
    """Real faces through the real pipeline: a replayed still must be refused, and every
    sample is reported with its decision and reason."""
    from device.demo.portraits import load_portrait

    try:
        hopper, collins = load_portrait("hopper"), load_portrait("collins")
    except BlinkpayError as exc:
        pytest.skip(str(exc))
    live = tmp_path / "live" / "hopper_clip"
    live.mkdir(parents=True)
    (live / "fps.txt").write_text("15\n")
    small = cv2.resize(hopper, None, fx=0.5, fy=0.5)
    for i in range(12):
        cv2.imwrite(str(live / f"f{i}.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    attack = tmp_path / "attack"
    attack.mkdir()
    cv2.imwrite(str(attack / "collins.jpg"), cv2.cvtColor(collins, cv2.COLOR_RGB2BGR))
    _touch(attack / "broken.png", b"\x89PNG\r\n\x1a\n not really")
    code = main(
        ["eval", "liveness", "--live", str(tmp_path / "live"), "--attack", str(attack),
         "--frames", "12", "--json"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {"live", "attack", "bpcer", "apcer", "samples"} <= set(out)
    by_name = {Path(s["path"]).name: s for s in out["samples"]}
    assert by_name["collins.jpg"]["decision"] == "refuse"
    assert by_name["collins.jpg"]["frames_with_eyes"] == 12  # the face was seen throughout
    assert by_name["broken.png"]["reason"].startswith("unreadable")
    assert by_name["hopper_clip"]["frames"] == 12 and out["bpcer"] in (0.0, 1.0)
    assert out["apcer"] == 0.0


def test_sources_tsv_labels_species_and_bona_fide_stills(tmp_path: Path) -> None:
    pad = tmp_path / "pad"
    (pad / "SOURCES.tsv").parent.mkdir(parents=True)
    (pad / "SOURCES.tsv").write_text(
        "repo\tcommit\tpath\tlicence\tkind\tnotes\n"
        "ann/rep\tc\tfake/p.jpg\tnone\tattack_print\t\n"
        "ann/rep\tc\tfake/s.png\tnone\tattack_replay\t\n"
        "ann/rep\tc\tv/fake.mp4\tnone\treplay_video\t\n"
        "ann/rep\tc\tv/real.mp4\tnone\tlive\t\n"
        "ann/rep\tc\treal/r.jpg\tnone\tlive\t\n",
        encoding="utf-8",
    )
    for name in ("fake/p.jpg", "fake/s.png", "v/fake.mp4", "v/real.mp4", "real/r.jpg"):
        _touch(pad / "ann__rep" / name)
    _touch(tmp_path / "clips" / "c.mp4")  # outside the table: the old rule, a live clip
    found = {s.path.name: s for s in ev.samples_under(tmp_path)}
    assert {n: (s.live, s.species, s.passive_only) for n, s in found.items()} == {
        "p.jpg": (False, "print", False),
        "s.png": (False, "screen_still", False),
        "fake.mp4": (False, "video_replay", False),
        "real.mp4": (True, "", False),
        "r.jpg": (True, "", True),
        "c.mp4": (True, "", False),
    }


def test_bona_fide_stills_stay_out_of_apcer_and_bpcer() -> None:
    rows = [
        {"truth": "live", "decision": "refuse", "species": None, "scope": "passive_only"},
        {"truth": "live", "decision": "accept", "species": None, "scope": "fused"},
    ]
    summary = ev.summarise(rows)
    assert summary["bpcer"] == 0.0 and summary["live"]["samples"] == 1
    assert summary["bona_fide_stills"] == {"samples": 1, "passive_refused": 1}
    assert "not evaluated" in summary["challenge"]
