"""Open-set 1:N identification (rank-1, FNIR at FPIR) of the terminal's own pipeline.

Besides the threshold sweep, it reports what the shipped match rule does
(device.core.match.decide with a MatchConfig): how often a non-enrolled searcher would ride
PIN-less as somebody (FPIR) and how often an enrolled one would not get a PIN-less match as
themselves (FNIR).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from device.core.config import MatchConfig
from device.core.match import decide
from device.errors import BlinkpayError
from device.evaluation.embedding import embed_files
from device.evaluation.gallery import Probe, identity_of
from device.evaluation.metrics import Search, fnir_at_fpir, rank1
from device.evaluation.progress import Progress
from device.vision.pipeline import FacePipeline
from device.vision.templates import TemplateError, fuse

FPIRS = ("0.01", "0.003")


def identify(
    pipeline: FacePipeline,
    match: MatchConfig,
    root: Path,
    gallery: list[str],
    probes: list[Probe],
) -> dict[str, Any]:
    """Enrol the gallery (one fused template per identity), search every probe, and report
    rank-1, FNIR at each FPIR of FPIRS, and what `match` does to the same searches."""
    start = time.monotonic()
    paths = [root / g for g in gallery] + [root / p.path for p in probes]
    progress = Progress(len(paths), "embedding")
    vectors = embed_files(pipeline, paths, progress)
    progress.close()
    by_identity: dict[str, list[np.ndarray]] = {}
    for g in gallery:
        vector = vectors[root / g]
        if vector is not None:
            by_identity.setdefault(identity_of(g), []).append(vector)
    enrolled: dict[str, np.ndarray] = {}
    for identity, vecs in by_identity.items():
        try:
            enrolled[identity] = fuse(vecs, pipeline.embedder_version).vector
        except TemplateError:
            continue
    if not enrolled:
        raise BlinkpayError("no gallery image gave a usable face")
    identities = tuple(enrolled)
    matrix = np.stack([enrolled[i] for i in identities])
    searches: list[Search] = []
    failed = 0
    for probe in probes:
        vector = vectors[root / probe.path]
        if vector is None:
            failed += 1
            continue
        truth = identity_of(probe.path) if probe.mated else None
        # a mated probe whose identity failed to enrol can only be a miss: keep it mated
        searches.append(Search(identities, matrix @ vector, truth))
    if not any(s.truth is None for s in searches) or not any(s.truth for s in searches):
        raise BlinkpayError("need both mated and non-mated probes with a usable face")
    fnir, thresholds = {}, {}
    for key in FPIRS:
        fnir[key], thresholds[key] = fnir_at_fpir(searches, float(key))
    return {
        "gallery": len(identities),
        "gallery_failed": len(set(map(identity_of, gallery))) - len(identities),
        "mated": sum(s.truth is not None for s in searches),
        "nonmated": sum(s.truth is None for s in searches),
        "failed": failed,
        "rank1": rank1(searches),
        "fnir_at_fpir": fnir,
        "threshold_at_fpir": thresholds,
        "at_config": at_config(searches, match),
        "embedder_version": pipeline.embedder_version,
        "seconds": round(time.monotonic() - start, 2),
    }


def at_config(searches: Sequence[Search], match: MatchConfig) -> dict[str, float]:
    """Outcome of the terminal's own rule: PIN-less "match" counts as an identification;
    "ambiguous" (a PIN settles it) does not, and is reported separately."""

    mated = [s for s in searches if s.truth is not None]
    nonmated = [s for s in searches if s.truth is None]
    false_matches = mated_hits = mated_pin = nonmated_pin = 0
    for search in searches:
        decision = decide(list(zip(search.identities, search.scores.tolist(), strict=True)), match)
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
