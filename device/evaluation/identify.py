"""Open-set 1:N identification (rank-1, FNIR at FPIR) of the terminal's own pipeline.

Besides the threshold sweep, it reports what the shipped match rule does
(device.core.match.decide with a MatchConfig): how often a non-enrolled searcher would ride
PIN-less as somebody (FPIR) and how often an enrolled one would not get a PIN-less match as
themselves (FNIR).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from device.core.config import MatchConfig
from device.core.match import decide, for_gallery
from device.errors import BlinkpayError
from device.evaluation.embedding import embed_files
from device.evaluation.gallery import Probe, identity_of
from device.evaluation.metrics import Search, fnir_at_fpir, rank1
from device.evaluation.progress import Progress
from device.vision.pipeline import FacePipeline
from device.vision.templates import TemplateError, fuse, same_person_min

FPIRS = ("0.01", "0.003")
CURVE_FRACTIONS = (0.25, 0.5, 1.0)  # of the distractors, added to the gallery per point


def _templates(
    pipeline: FacePipeline,
    root: Path,
    images: list[str],
    vectors: dict[Path, Any],
    ident: Callable[[str], str] = identity_of,
) -> dict[str, np.ndarray]:
    """One fused template per identity (several images of one person: templates.fuse)."""
    by_identity: dict[str, list[np.ndarray]] = {}
    for image in images:
        vector = vectors[root / image]
        if vector is not None:
            by_identity.setdefault(ident(image), []).append(vector)
    enrolled: dict[str, np.ndarray] = {}
    for identity, vecs in by_identity.items():
        try:
            enrolled[identity] = fuse(
                vecs, pipeline.embedder_version, same_person_min(pipeline)
            ).vector
        except TemplateError:
            continue
    return enrolled


def identify(
    pipeline: FacePipeline,
    match: MatchConfig,
    root: Path,
    gallery: list[str],
    probes: list[Probe],
    distractors: list[str] | None = None,
    vectors: dict[Path, np.ndarray | None] | None = None,
    same_person: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Enrol the gallery (one fused template per identity), search every probe, and report
    rank-1, FNIR at each FPIR of FPIRS, and what `match` does to the same searches (its
    threshold taken at the gallery's size, device.core.match.for_gallery).

    With `distractors` (more people enrolled, never probed; an identity that is also in
    the gallery or the probes is left out and counted), the same searches are repeated
    against the gallery plus growing shares of them (CURVE_FRACTIONS): `by_gallery_size`
    holds one block per gallery size, a curve of FNIR against the number enrolled.
    `vectors` (path -> embedding, from embed_files with this pipeline) skips embedding.
    `same_person` maps a folder name to another it is the same person as (a list's label
    errors): both count as one identity."""
    aliases = same_person or {}

    def ident(path: str) -> str:
        name = identity_of(path)
        return aliases.get(name, name)

    start = time.monotonic()
    distractors = distractors or []
    paths = [root / g for g in gallery + distractors] + [root / p.path for p in probes]
    if vectors is None:
        progress = Progress(len(paths), "embedding")
        vectors = embed_files(pipeline, paths, progress)
        progress.close()
    enrolled = _templates(pipeline, root, gallery, vectors, ident)
    if not enrolled:
        raise BlinkpayError("no gallery image gave a usable face")
    known = {ident(g) for g in gallery} | {ident(p.path) for p in probes}
    extra_all = _templates(
        pipeline, root, [d for d in distractors if ident(d) not in known], vectors, ident
    )
    overlapping = len({identity_of(d) for d in distractors if ident(d) in known})
    extra_order = list(dict.fromkeys(ident(d) for d in distractors if ident(d) in extra_all))
    identities = tuple(enrolled) + tuple(extra_order)
    matrix = np.stack([enrolled.get(i, extra_all.get(i)) for i in identities])
    probe_vectors, truths, failed = [], [], 0
    for probe in probes:
        vector = vectors[root / probe.path]
        if vector is None:
            failed += 1
            continue
        probe_vectors.append(vector)
        # a mated probe whose identity failed to enrol can only be a miss: keep it mated
        # a "non-mated" probe whose same_person alias is enrolled is that person
        name = ident(probe.path)
        truths.append(name if probe.mated or name in enrolled else None)
    if None not in truths or not any(truths):
        raise BlinkpayError("need both mated and non-mated probes with a usable face")
    scores = np.stack(probe_vectors) @ matrix.T
    sizes = [len(enrolled)]
    if extra_order:
        sizes += [len(enrolled) + max(1, round(f * len(extra_order))) for f in CURVE_FRACTIONS]
    curve = []
    for size in dict.fromkeys(sizes):
        searches = [
            Search(identities[:size], row[:size], truth)
            for row, truth in zip(scores, truths, strict=True)
        ]
        curve.append(_block(searches, match, size))
    base = curve[0]
    return {
        "gallery": len(enrolled),
        "gallery_failed": len({ident(g) for g in gallery}) - len(enrolled),
        "distractors": len(extra_order),
        "distractors_left_out": overlapping,
        "mated": sum(t is not None for t in truths),
        "nonmated": sum(t is None for t in truths),
        "failed": failed,
        "rank1": base["rank1"],
        "fnir_at_fpir": base["fnir_at_fpir"],
        "threshold_at_fpir": base["threshold_at_fpir"],
        "at_config": base["at_config"],
        "by_gallery_size": curve,
        "embedder_version": pipeline.embedder_version,
        "seconds": round(time.monotonic() - start, 2),
    }


def _block(searches: list[Search], match: MatchConfig, size: int) -> dict[str, Any]:
    fnir, thresholds = {}, {}
    for key in FPIRS:
        fnir[key], thresholds[key] = fnir_at_fpir(searches, float(key))
    return {
        "gallery_size": size,
        "rank1": rank1(searches),
        "fnir_at_fpir": fnir,
        "threshold_at_fpir": thresholds,
        "at_config": at_config(searches, for_gallery(match, size)),
    }


def at_config(searches: Sequence[Search], match: MatchConfig) -> dict[str, float]:
    """Outcome of the terminal's own rule: PIN-less "match" counts as an identification;
    "ambiguous" (a PIN settles it) does not, and is reported separately."""

    mated = [s for s in searches if s.truth is not None]
    nonmated = [s for s in searches if s.truth is None]
    false_matches = mated_hits = mated_pin = nonmated_pin = 0
    k = match.candidates + 1  # what the terminal's search returns
    for search in searches:
        top = np.argsort(-search.scores)[:k]
        ranked = [(search.identities[i], float(search.scores[i])) for i in top]
        decision = decide(ranked, match)
        if search.truth is None:
            false_matches += decision.kind == "match"
            nonmated_pin += decision.kind == "ambiguous"
        else:
            mated_hits += decision.kind == "match" and decision.token == search.truth
            mated_pin += decision.kind == "ambiguous"
    return {
        "threshold": match.threshold,
        "margin": match.margin,
        "pin_threshold": match.pin_threshold,
        "fpir": false_matches / len(nonmated),
        "fnir": 1.0 - mated_hits / len(mated),
        "mated_ambiguous": mated_pin / len(mated),
        "nonmated_ambiguous": nonmated_pin / len(nonmated),
    }
