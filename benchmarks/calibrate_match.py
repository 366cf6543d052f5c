"""Choose the [match] values for one embedder on calibration people (never the reported ones).

    nice .venv/bin/python benchmarks/calibrate_match.py --lists LISTS_DIR --root IMAGES \
        [--embedder mobilefacenet] [--cache /tmp/embeddings.npz]

LISTS_DIR holds gallery.txt, probes.txt and distractors.txt as written by
`blinkpay eval identify --make-lists LISTS_DIR --people-of pairsDevTrain.txt` (LFW view 1
DevTrain people searched, everyone else a distractor). The faces go through the shipped
pipeline once (`--cache` keeps the embeddings, never an image, for reruns).

1. threshold_per_decade: from the tail of the impostor scores (every search against every
   enrolled person not its own): per comparison the chance p(t) that a stranger scores at
   least t. A stranger's best of N is at least t with probability 1 - (1 - p(t))^N, so a
   fixed FPIR needs p(t) to fall as 1/N. The upper tail is fitted as exponential, p(t) =
   exp(a - t / s); then each 10x more enrolled people need t higher by s ln 10.
2. threshold and margin: every pair on a grid, the threshold raised per gallery size by
   (1), run through the terminal's own rule (device.core.match.decide) at each gallery
   size (the gallery, then + 1/4, 1/2 and all distractors): the pair with the most mated
   searches settled PIN-less among those whose FPIR stays at or below the target divided
   by the safety factor at every size.
3. pin_threshold: the highest value that keeps the share of mated searches that can pay
   (PIN-less, or the right person among the PIN candidates) within --pin-loss of what no
   pin_threshold at all gives, at the largest size.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.core.config import MatchConfig  # noqa: E402
from device.core.match import decide, for_gallery  # noqa: E402
from device.evaluation.embedding import embed_files  # noqa: E402
from device.evaluation.gallery import (  # noqa: E402
    identity_of,
    read_gallery,
    read_probes,
    read_same_person,
)
from device.evaluation.identify import CURVE_FRACTIONS, _templates  # noqa: E402
from device.evaluation.progress import Progress  # noqa: E402
from device.vision.config import VisionConfig  # noqa: E402
from device.vision.pipeline import FacePipeline  # noqa: E402

# LFW label errors (one person under two names, e.g. the same photo filed as
# Andrew_Gilligan and Andrew_Caldecott): a search of one that finds the other is a correct
# match, not a false one. Both names' searches are left out of the calibration.
SAME_PERSON_FILE = Path(__file__).resolve().parent / "lfw_same_person.txt"
TAIL_FRACTION = 1e-4  # the share of impostor scores the exponential tail is fitted on
REFERENCE_GALLERY = 1000


def load_vectors(
    pipeline: FacePipeline, root: Path, names: list[str], cache: Path | None
) -> dict[Path, np.ndarray | None]:
    stored: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache) as data:
            if str(data["__version__"]) == pipeline.embedder_version:
                stored = {k: data[k] for k in data.files if k != "__version__"}
    missing = [n for n in dict.fromkeys(names) if n not in stored and f"-{n}" not in stored]
    if missing:
        progress = Progress(len(missing), "embedding")
        fresh = embed_files(pipeline, [root / n for n in missing], progress)
        progress.close()
        for name in missing:
            vector = fresh[root / name]
            if vector is None:
                stored[f"-{name}"] = np.zeros(0, np.float32)  # no face: remembered too
            else:
                stored[name] = vector
        if cache is not None:
            np.savez(cache, __version__=np.array(pipeline.embedder_version), **stored)
    return {root / n: stored.get(n) for n in names}


def tail_slope(impostors: np.ndarray) -> tuple[float, float]:
    """(s, fitted share): p(t) = exp(a - t/s) least squares on the top TAIL_FRACTION."""
    ordered = np.sort(impostors)[::-1]
    top = max(50, int(len(ordered) * TAIL_FRACTION))
    t = ordered[:top]
    p = np.arange(1, top + 1) / len(ordered)
    slope, _ = np.polyfit(t, np.log(p), 1)
    return -1.0 / slope, top / len(ordered)


def outcome(tops: list[tuple[list[tuple[str, float]], str | None]], match: MatchConfig) -> dict:
    false = hits = payable = nonmated_pin = 0
    mated = sum(truth is not None for _, truth in tops)
    for ranked, truth in tops:
        d = decide(ranked, match)
        if truth is None:
            false += d.kind == "match"
            nonmated_pin += d.kind == "ambiguous"
        else:
            hit = d.kind == "match" and d.token == truth
            hits += hit
            payable += hit or (d.kind == "ambiguous" and truth in d.candidates)
    nonmated = len(tops) - mated
    return {
        "fpir": false / nonmated,
        "pinless": hits / mated,
        "payable": payable / mated,
        "nonmated_pin": nonmated_pin / nonmated,
    }


def same_person(
    vectors: dict[Path, np.ndarray | None], gallery: list[str], probes: list
) -> dict[str, float]:
    """Percentiles of one face's cosine to the mean of the same person's other faces (3 or
    more faces): what templates.fuse's outlier limit (SAME_PERSON_MIN_COSINE) cuts."""
    by_person: dict[str, list[np.ndarray]] = {}
    paths = [p for p in vectors if p.relative_to(p.parents[1]).as_posix() in set(gallery)]
    paths += [p for p in vectors if any(p.as_posix().endswith(x.path) for x in probes if x.mated)]
    for path in dict.fromkeys(paths):
        vector = vectors[path]
        if vector is not None:
            by_person.setdefault(path.parent.name, []).append(vector)
    cosines = []
    for faces in by_person.values():
        if len(faces) >= 3:
            units = np.stack(faces)
            total = units.sum(axis=0)
            for u in units:
                rest = total - u
                cosines.append(float(u @ rest / np.linalg.norm(rest)))
    values = np.asarray(cosines)
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in (0.5, 1, 5, 50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lists", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--embedder", default="mobilefacenet")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--fpir", type=float, default=0.003, help="target PIN-less FPIR")
    parser.add_argument("--safety", type=float, default=2.0, help="target / this at calibration")
    parser.add_argument("--pin-loss", type=float, default=0.01, help="payable share to give up")
    args = parser.parse_args()
    pipeline = FacePipeline.from_config(VisionConfig(threads=1, embedder=args.embedder))
    gallery = read_gallery(args.lists / "gallery.txt")
    probes = read_probes(args.lists / "probes.txt")
    distractors = read_gallery(args.lists / "distractors.txt")
    names = gallery + distractors + [p.path for p in probes]
    vectors = load_vectors(pipeline, args.root, names, args.cache)
    enrolled = _templates(pipeline, args.root, gallery, vectors)
    extra = _templates(pipeline, args.root, distractors, vectors)
    identities = list(enrolled) + [i for i in extra if i not in enrolled]
    matrix = np.stack([enrolled.get(i, extra.get(i)) for i in identities])
    rows, truths = [], []
    errata = {n for pair in read_same_person(SAME_PERSON_FILE).items() for n in pair}
    for probe in probes:
        vector = vectors[args.root / probe.path]
        if vector is not None and identity_of(probe.path) not in errata:
            rows.append(vector)
            truths.append(identity_of(probe.path) if probe.mated else None)
    scores = np.stack(rows) @ matrix.T
    column = {identity: k for k, identity in enumerate(identities)}
    own = np.array([column.get(t, -1) if t is not None else -1 for t in truths])
    mask = np.ones_like(scores, bool)
    mask[np.flatnonzero(own >= 0), own[own >= 0]] = False
    impostors = scores[mask]
    s, share = tail_slope(impostors)
    per_decade = round(s * math.log(10), 3)
    print(
        f"{pipeline.embedder_version}: {len(identities)} enrolled ({len(enrolled)} gallery), "
        f"{len(rows)} searches ({sum(t is None for t in truths)} non-mated), "
        f"{len(impostors)} impostor scores; tail (top {share:.0e}) s = {s:.4f} -> "
        f"threshold_per_decade {per_decade}"
    )
    sizes = [len(enrolled)] + [
        len(enrolled) + round(f * (len(identities) - len(enrolled))) for f in CURVE_FRACTIONS
    ]
    k = 4
    tops_by_size = {}
    for size in sizes:
        part = scores[:, :size]
        best = np.argsort(-part, axis=1)[:, :k]
        tops_by_size[size] = [
            ([(identities[j], float(part[i, j])) for j in best[i]], truth)
            for i, truth in enumerate(truths)
        ]
    limit = args.fpir / args.safety
    base = MatchConfig(
        threshold=0.99,
        pin_threshold=0.0,
        reference_gallery=REFERENCE_GALLERY,
        threshold_per_decade=per_decade,
    )
    reference = min(sizes, key=lambda n: abs(math.log(n / REFERENCE_GALLERY)))
    best_pick, table = None, []
    for threshold in np.arange(0.25, 0.80, 0.01):
        for margin in (0.0, 0.02, 0.04, 0.06, 0.08, 0.10):
            config = replace(base, threshold=round(float(threshold), 3), margin=margin)
            results = {n: outcome(tops_by_size[n], for_gallery(config, n)) for n in sizes}
            ok = all(r["fpir"] <= limit for r in results.values())
            pinless = results[reference]["pinless"]
            table.append((config.threshold, margin, ok, pinless, results[reference]["fpir"]))
            if ok and (best_pick is None or pinless > best_pick[1]):
                best_pick = (config, pinless)
    assert best_pick is not None, "nothing meets the target"
    chosen = best_pick[0]
    print(f"target FPIR {args.fpir} / safety {args.safety} = {limit:.4f} at every size {sizes}")
    print(f"chosen threshold {chosen.threshold} margin {chosen.margin} (at {REFERENCE_GALLERY})")

    def payable(pin: float) -> float:
        trial = for_gallery(replace(chosen, pin_threshold=pin), sizes[-1])
        return outcome(tops_by_size[sizes[-1]], trial)["payable"]

    keep = payable(-0.99) - args.pin_loss
    pin = max(
        round(float(v), 3) for v in np.arange(0.0, chosen.threshold, 0.01) if payable(v) >= keep
    )
    chosen = replace(chosen, pin_threshold=pin)
    print(f"pin_threshold {pin} (mated payable >= {keep:.3f} at {sizes[-1]})")
    for n in sizes:
        applied = for_gallery(chosen, n)
        r = outcome(tops_by_size[n], applied)
        print(
            f"  enrolled {n}: threshold {applied.threshold:.3f}: FPIR {r['fpir'] * 100:.2f} %, "
            f"PIN-less {r['pinless'] * 100:.1f} %, payable {r['payable'] * 100:.1f} %, "
            f"strangers asked for a PIN {r['nonmated_pin'] * 100:.1f} %"
        )
    print(
        f"same person, one face to the mean of the others: {same_person(vectors, gallery, probes)}"
    )
    print(
        json.dumps(
            {
                "threshold": chosen.threshold,
                "margin": chosen.margin,
                "pin_threshold": chosen.pin_threshold,
                "reference_gallery": REFERENCE_GALLERY,
                "threshold_per_decade": per_decade,
            }
        )
    )


if __name__ == "__main__":
    main()
