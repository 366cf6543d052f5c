"""Liveness evaluation (`blinkpay eval liveness`) on clips and replayed stills, as
ISO/IEC 30107-3 figures: APCER per attack species, BPCER, and each cue's score per sample.

Every frame goes through the terminal's own vision pipeline (the largest face's track:
eye openness and the passive cue at its bounded rate) and the terminal's own scorers: the
blink (device.core.liveness) and the passive majority (device.core.liveness_gate). A
sample is accepted, as the session would, when the face blinked AND the passive cue's
verdicts on its track lean to real (none at all does not refuse unless
`session.passive_required`). The illumination challenge needs the terminal's own light
and a camera watching the face live: recorded data cannot answer a code chosen now, so it
is reported as not evaluated. Samples and species: device/evaluation/liveness_samples.py.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from device.core.config import LivenessConfig
from device.core.liveness import BlinkTracker
from device.core.liveness_gate import PassiveTally
from device.errors import BlinkpayError
from device.evaluation.liveness_samples import (
    KNOWN_SPECIES,
    STILL_FPS,
    Sample,
    sample_frames,
    samples_in,
    samples_under,
    still_frames,
)
from device.vision.pipeline import FacePipeline

__all__ = [
    "KNOWN_SPECIES",
    "STILL_FPS",
    "Sample",
    "evaluate",
    "sample_frames",
    "samples_in",
    "samples_under",
    "score_sample",
    "still_frames",
    "summarise",
]

CHALLENGE_NOT_EVALUATED = (
    "not evaluated: the illumination challenge answers a random light code drawn during "
    "the attempt, which recorded data cannot contain; it is tested end to end on the "
    "simulated camera (blinkpay demo, tests) and must be measured in the field "
    "(docs/liveness.md)"
)
NOTES = [
    "Stills are replayed as frame sequences with hand-held jitter: a presentation that "
    "cannot blink.",
    "image_T1.jpg (a live person, but one still frame) is counted as an attack of species "
    "still_of_live_person: replayed, it is physically a photo presentation, and a blink "
    "check cannot and must not accept it. It says nothing about BPCER, which only real "
    "clips measure.",
    "Bona fide stills labelled live in a SOURCES.tsv (a live person's single picture) "
    "cannot blink either: they are left out of APCER and BPCER and measure the passive "
    "cue alone (bona_fide_stills).",
    "A sample is accepted when the face blinked AND the passive cue's verdicts over the "
    "whole sample lean to real (the session counts them up to its decision).",
    "APCER is given per attack species (ISO/IEC 30107-3); 'apcer' is the worst species.",
    "challenge: " + CHALLENGE_NOT_EVALUATED,
]


class _PassiveWatch:
    """The passive cue's fresh verdicts on one track, as the face book passes them on."""

    def __init__(self) -> None:
        self.tally, self.no_verdict = PassiveTally(), 0
        self.real_probabilities: list[float] = []
        self._last: float | None = None

    def see(self, score: Any) -> None:
        if score is None or score.timestamp == self._last:
            return
        self._last = score.timestamp
        if score.verdict == "no_verdict":
            self.no_verdict += 1
            return
        self.tally.add(score.verdict == "real")
        self.real_probabilities.append(score.real_probability)

    def report(self, required: bool) -> dict[str, Any]:
        probabilities = self.real_probabilities
        return {
            "refuses": self.tally.refuses(required),
            "real": self.tally.real,
            "spoof": self.tally.spoof,
            "no_verdict": self.no_verdict,
            "mean_real_probability": (
                round(statistics.fmean(probabilities), 4) if probabilities else None
            ),
        }


def score_sample(
    sample: Sample,
    pipeline: FacePipeline,
    cfg: LivenessConfig,
    still_count: int,
    *,
    passive_required: bool = False,
) -> dict[str, Any]:
    """One sample through the pipeline (the largest face's track) and every cue."""
    pipeline.reset_tracking()
    tracker, passive = BlinkTracker(cfg), _PassiveWatch()
    track: int | None = None
    frames = 0
    for timestamp, rgb in sample_frames(sample, still_count):
        frames += 1
        faces = pipeline.process(rgb, timestamp, embed=False)
        if track is None and faces:
            track = faces[0].track_id  # the largest face is the one presenting
        face = next((f for f in faces if f.track_id == track), None)
        if face is None:
            tracker.update(timestamp, None, None)
            continue
        tracker.observe(timestamp, face)
        passive.see(face.passive)
    blink = tracker.result()
    passive_report = passive.report(passive_required)
    if sample.passive_only:
        decision = "refuse" if passive_report["refuses"] else "accept"
        reason = "replay_suspected" if passive_report["refuses"] else "passive_real"
    elif not blink.live:
        decision, reason = "refuse", blink.reason.value
    elif passive_report["refuses"]:
        decision, reason = "refuse", "replay_suspected"
    else:
        decision, reason = "accept", "blink"
    return {
        "path": str(sample.path),
        "kind": sample.kind,
        "truth": "live" if sample.live else "attack",
        "species": sample.species or None,
        "scope": "passive_only" if sample.passive_only else "fused",
        "decision": decision,
        "reason": reason,
        "score": blink.score,
        "cues": {
            "blink": {"live": blink.live, "reason": blink.reason.value, "score": blink.score},
            "passive": passive_report,
            "challenge": "not_evaluated",
        },
        "blinks": [
            {"start_s": round(b.start, 3), "ms": round(b.duration_ms), "depth": b.depth}
            for b in blink.blinks
        ],
        "frames": frames,
        "frames_with_eyes": blink.frames,
    }


def _by_species(attacks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_species: dict[str, dict[str, Any]] = {}
    for row in attacks:
        entry = by_species.setdefault(row["species"], {"samples": 0, "accepted": 0})
        entry["samples"] += 1
        entry["accepted"] += row["decision"] == "accept"
    for entry in by_species.values():
        entry["apcer"] = entry["accepted"] / entry["samples"]
    return by_species


def _cue_refusals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many of these samples each cue alone would refuse."""
    cues = [r.get("cues") or {} for r in rows]
    return {
        "blink": sum(not (c.get("blink") or {}).get("live", False) for c in cues),
        "passive": sum((c.get("passive") or {}).get("refuses", False) for c in cues),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fused = [r for r in rows if r.get("scope", "fused") == "fused"]
    live = [r for r in fused if r["truth"] == "live"]
    attacks = [r for r in fused if r["truth"] == "attack"]
    stills = [r for r in rows if r.get("scope") == "passive_only"]
    refused_live = sum(r["decision"] == "refuse" for r in live)
    accepted_attacks = sum(r["decision"] == "accept" for r in attacks)
    by_species = _by_species(attacks)
    return {
        "live": {"samples": len(live), "refused": refused_live},
        "attack": {"samples": len(attacks), "accepted": accepted_attacks},
        "bpcer": refused_live / len(live) if live else None,
        "apcer": max((e["apcer"] for e in by_species.values()), default=None),
        "apcer_by_species": by_species,
        "refused_by_cue": {"live": _cue_refusals(live), "attack": _cue_refusals(attacks)},
        "bona_fide_stills": {
            "samples": len(stills),
            "passive_refused": sum(r["decision"] == "refuse" for r in stills),
        },
        "challenge": CHALLENGE_NOT_EVALUATED,
        "samples": rows,
        "notes": NOTES,
    }


def _unreadable(sample: Sample, exc: Exception) -> dict[str, Any]:
    return {
        "path": str(sample.path),
        "truth": "live" if sample.live else "attack",
        "species": sample.species or None,
        "scope": "passive_only" if sample.passive_only else "fused",
        "decision": "refuse",
        "reason": f"unreadable: {exc}",
        "score": 0.0,
        "cues": {},
        "blinks": [],
        "frames": 0,
        "frames_with_eyes": 0,
        "kind": sample.kind,
    }


def evaluate(
    samples: Sequence[Sample],
    pipeline: FacePipeline,
    cfg: LivenessConfig,
    still_count: int,
    *,
    passive_required: bool = False,
) -> dict[str, Any]:
    """Score every sample (an unreadable one is reported as refused, not fatal) and sum up."""
    start = time.monotonic()
    rows = []
    for sample in samples:
        try:
            rows.append(
                score_sample(sample, pipeline, cfg, still_count, passive_required=passive_required)
            )
        except BlinkpayError as exc:  # an unreadable sample is reported, not fatal
            rows.append(_unreadable(sample, exc))
    summary = summarise(rows)
    summary["seconds"] = round(time.monotonic() - start, 2)
    return summary
