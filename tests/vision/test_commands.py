"""`blinkpay eval verify|identify` and `bench pipeline` end to end on bounded LFW subsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.cli import main

PEOPLE = ("Alvaro_Uribe", "Amelie_Mauresmo", "Andy_Roddick", "Ana_Guevara")


def _images(lfw_dir: Path, person: str) -> list[str]:
    return sorted(f"{person}/{p.name}" for p in (lfw_dir / "images" / person).glob("*.jpg"))


def _run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "embedding" in out.err or "bench" in out.err  # the progress bar went to stderr
    return json.loads(out.out)


@pytest.mark.data
def test_eval_verify_on_tsv_pairs(lfw_dir: Path, tmp_path: Path, capsys) -> None:
    a, b, c = (_images(lfw_dir, p) for p in PEOPLE[:3])
    rows = [(a[0], a[1], 1), (b[0], b[1], 1), (c[0], c[1], 1)]
    rows += [(a[2], b[2], 0), (b[3], c[3], 0), (c[4], a[3], 0), ("Nobody/x.jpg", a[4], 0)]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{x}\t{y}\t{s}\n" for x, y, s in rows))
    result = _run_json(
        capsys,
        ["eval", "verify", "--pairs", str(pairs), "--images", str(lfw_dir / "images"), "--json"],
    )
    assert (result["pairs"], result["same"], result["different"]) == (7, 3, 4)
    assert result["failed"] == 1  # the missing image
    assert result["accuracy"] == 1.0
    assert set(result["tar_at_far"]) == {"0.01", "0.001"}
    for key in ("eer", "threshold_at_far_0.001", "seconds"):
        assert key in result


@pytest.mark.data
def test_eval_identify_reports_sweep_and_shipped_rule(
    lfw_dir: Path, tmp_path: Path, capsys
) -> None:
    enrolled, searching = PEOPLE[:3], PEOPLE[3]
    gallery = tmp_path / "gallery.txt"
    gallery.write_text("".join(f"{_images(lfw_dir, p)[0]}\n" for p in enrolled))
    probes = tmp_path / "probes.txt"
    lines = [f"{_images(lfw_dir, p)[1]} mated\n" for p in enrolled]
    lines += [f"{path} nonmated\n" for path in _images(lfw_dir, searching)[:3]]
    probes.write_text("".join(lines))
    root = str(lfw_dir / "images")
    argv = ["eval", "identify", "--gallery", str(gallery), "--probes", str(probes)]
    result = _run_json(capsys, [*argv, "--root", root, "--json"])
    assert (result["gallery"], result["mated"], result["nonmated"]) == (3, 3, 3)
    assert result["rank1"] == 1.0
    assert set(result["fnir_at_fpir"]) == {"0.01", "0.003"}
    shipped = result["at_config"]
    assert {"threshold", "margin", "fpir", "fnir"} <= set(shipped)
    assert 0.0 <= shipped["fpir"] <= 1.0 and 0.0 <= shipped["fnir"] <= 1.0


@pytest.mark.data
def test_eval_identify_with_distractors_gives_a_curve_per_gallery_size(
    lfw_dir: Path, tmp_path: Path, capsys
) -> None:
    enrolled, searching = PEOPLE[:2], PEOPLE[3]
    gallery = tmp_path / "gallery.txt"
    gallery.write_text("".join(f"{_images(lfw_dir, p)[0]}\n" for p in enrolled))
    probes = tmp_path / "probes.txt"
    lines = [f"{_images(lfw_dir, p)[1]} mated\n" for p in enrolled]
    lines += [f"{path} nonmated\n" for path in _images(lfw_dir, searching)[:2]]
    probes.write_text("".join(lines))
    others = sorted(p.name for p in (lfw_dir / "images").iterdir() if p.name not in PEOPLE)[:8]
    # the searching person among the distractors would make a non-mated probe mated
    distractors = tmp_path / "distractors.txt"
    distractors.write_text(
        "".join(f"{_images(lfw_dir, p)[0]}\n" for p in [*others, searching, PEOPLE[2]])
    )
    root = str(lfw_dir / "images")
    argv = ["eval", "identify", "--gallery", str(gallery), "--probes", str(probes)]
    argv += ["--distractors", str(distractors), "--root", root, "--json"]
    result = _run_json(capsys, argv)
    assert (result["gallery"], result["distractors"], result["distractors_left_out"]) == (2, 9, 1)
    sizes = [block["gallery_size"] for block in result["by_gallery_size"]]
    assert sizes == [2, 4, 6, 11]  # the gallery, then + 1/4, 1/2 and all distractors
    for block in result["by_gallery_size"]:
        assert set(block["fnir_at_fpir"]) == {"0.01", "0.003"}
        assert {"threshold", "fpir", "fnir", "mated_ambiguous"} <= set(block["at_config"])
    # the first block is the gallery alone, as without --distractors
    assert result["by_gallery_size"][0]["at_config"] == result["at_config"]
    # a distractor filed under another name of a searched person is that person: left out
    same = tmp_path / "same.txt"
    same.write_text(f"{searching} {others[0]}\n")
    again = _run_json(capsys, [*argv, "--same-person", str(same)])
    assert (again["distractors"], again["distractors_left_out"]) == (8, 2)


@pytest.mark.data
def test_bench_pipeline_reports_every_stage(lfw_dir: Path, capsys) -> None:
    argv = ["bench", "pipeline", "--images", str(lfw_dir / "images" / PEOPLE[0])]
    result = _run_json(capsys, [*argv, "--limit", "3", "--json"])
    assert result["images"] == 3 and result["faces"] >= 3
    assert result["runtime"] in ("ai-edge-litert", "tflite-runtime")
    assert {"passive_v2", "passive_v1se"} <= set(result["models"])
    stages = ("decode", "detect", "landmarks", "eyes", "align", "embed", "passive", "light")
    for stage in (*stages, "total_per_face"):
        assert result["ms"][stage]["median"] > 0
        assert result["ms"][stage]["p95"] >= result["ms"][stage]["median"]
    assert "embedders" not in result


@pytest.mark.data
def test_bench_pipeline_compares_both_embedders_in_one_run(lfw_dir: Path, capsys) -> None:
    argv = ["bench", "pipeline", "--images", str(lfw_dir / "images" / PEOPLE[1])]
    result = _run_json(capsys, [*argv, "--limit", "2", "--compare-embedders", "--json"])
    both = result["embedders"]
    assert set(both) == {"mobilefacenet", "dlib"}
    assert both["mobilefacenet"]["ms"] == result["ms"]  # the configured one is the main block
    for row in both.values():
        assert row["faces"] >= 2 and row["ms"]["embed"]["median"] > 0
    assert both["dlib"]["embedder_version"] != both["mobilefacenet"]["embedder_version"]


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "verify", "--pairs", "{tmp}/none.txt", "--images", "{tmp}"],
        ["eval", "verify", "--pairs", "{tmp}/none.txt", "--images", "{tmp}/absent"],
        ["eval", "identify", "--root", "{tmp}"],
        ["bench", "pipeline", "--images", "{tmp}"],
    ],
    ids=["pairs-missing", "images-missing", "lists-missing", "no-images"],
)
def test_commands_refuse_bad_arguments_with_one_line(tmp_path: Path, argv: list[str], capsys):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("blinkpay ") and "error:" in err and "\n" not in err
