"""Enrolment checks with the terminal's own FacePipeline: per-photo quality feedback, all
photos one person, not enrolled already under another account (1:N over the whole
gallery). Photos are decoded in memory and dropped when the call returns; only the fused
template reaches the database."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.console.blink import BlinkCheck, measure
from backend.console.i18n import N_, Part, Translate, say
from backend.console.store import ConsoleStore
from backend.duplicates import DUPLICATE, DuplicateFace, nearest_enrolled, refuse_duplicate
from device.core.config import LivenessConfig, MatchConfig
from device.errors import TranslatableError
from device.vision.pipeline import FacePipeline, FaceResult
from device.vision.templates import Template, fuse, same_person_min

MAX_PHOTOS = 5
# The terminal's PIN threshold is the lowest similarity at which it takes a face for a
# customer at all; two photos less alike than that are not one person for the terminal,
# whatever the fusion floor (0.8) would let through.
SAME_PERSON = MatchConfig().pin_threshold
PHOTO_COUNT = N_("give 1 to {most} photos")
NO_MODELS = N_("this console runs without the face models")
EYES_OPEN = 0.15  # eye aspect ratio below this: shut or half-shut (device/vision/eyes.py)


class EnrolRefused(TranslatableError):
    """An enrolment refused before anything was written, with the counted reason. The
    message is an N_ message with {arguments} (`args`; a Part or a list of Parts is
    translated too): `str()` gives it in English, `text(_)` in the operator's language."""

    def __init__(
        self,
        message: str,
        reason: str,
        detail: dict[str, Any] | None = None,
        args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, reason, args)
        self.detail = detail or {}


@dataclass
class PhotoCheck:
    ok: bool
    faces: int
    problems: list[Part]  # N_ messages with their arguments
    face_px: float | None = None
    yaw_deg: float | None = None
    pitch_deg: float | None = None
    sharpness: float | None = None
    eyes: float | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    weight: float = 1.0  # quality.fusion_weight: how much it counts in the template

    def public(self, _: Translate) -> dict[str, Any]:
        """The check as JSON for the page, its problems in the language of `_`."""
        shown = {k: v for k, v in self.__dict__.items() if k != "embedding"}
        shown["problems"] = [say(_, *problem) for problem in self.problems]
        return shown


@dataclass
class Checked:
    template: Template
    pairwise_min: float
    nearest: list[dict[str, Any]]  # the gallery's closest accounts, for the operator


# A photo's quality reasons (device/vision/quality.py), as the operator reads them.
PROBLEMS = {
    "small": N_("face too small: come closer"),
    "yaw": N_("head turned: look straight at the camera"),
    "pitch": N_("head tilted: look straight at the camera"),
    "blur": N_("blurred: hold still"),
    "dark": N_("too dark"),
    "bright": N_("too bright"),
    "no_landmarks": N_("face not clear"),
}
NO_FACE = N_("no face found")
FACES = N_("{n} faces: one person only")


def _problems(face: FaceResult) -> list[Part]:
    problems: list[Part] = [
        (PROBLEMS[r], {}) if r in PROBLEMS else ("{text}", {"text": r})
        for r in face.quality.reasons
    ]
    if face.eyes is not None and face.eyes.mean < EYES_OPEN:
        problems.append((N_("eyes closed: open your eyes"), {}))
    return problems


class Enroller:
    """One pipeline, one caller at a time (the models are not thread-safe)."""

    def __init__(
        self,
        pipeline: FacePipeline,
        store: ConsoleStore,
        liveness: LivenessConfig | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.liveness = liveness or LivenessConfig()
        self._lock = threading.Lock()

    def check_photo(self, rgb: np.ndarray) -> PhotoCheck:
        with self._lock:
            faces = self.pipeline.process(rgb, 0.0, track=False, passive=False)
        if len(faces) != 1:
            problem: Part = (NO_FACE, {}) if not faces else (FACES, {"n": len(faces)})
            return PhotoCheck(False, len(faces), [problem])
        face = faces[0]
        problems = _problems(face)
        q = face.quality
        return PhotoCheck(
            ok=not problems and face.embedding is not None,
            faces=1,
            problems=problems,
            face_px=round(q.face_px, 1),
            yaw_deg=round(q.yaw_deg, 1),
            pitch_deg=round(q.pitch_deg, 1),
            sharpness=round(q.sharpness, 1),
            eyes=None if face.eyes is None else round(face.eyes.mean, 3),
            embedding=face.embedding,
            weight=face.weight,
        )

    def blink(self, frames: Sequence[tuple[float, np.ndarray]]) -> BlinkCheck:
        with self._lock:
            return measure(self.pipeline, frames, self.liveness)

    def check(
        self, photos: Sequence[np.ndarray], token: str, live: np.ndarray | None = None
    ) -> Checked:
        """Every check before anything is written; EnrolRefused names the first that fails.
        `live`: the face that blinked on the camera path, which must be the photos' person."""
        if not 1 <= len(photos) <= MAX_PHOTOS:
            raise EnrolRefused(PHOTO_COUNT, "photo_count", args={"most": MAX_PHOTOS})
        checks = [self.check_photo(rgb) for rgb in photos]
        for index, c in enumerate(checks, 1):
            if c.faces == 0:
                raise EnrolRefused(
                    N_("photo {index}: no face found"), "no_face", args={"index": index}
                )
            if c.faces > 1:
                raise EnrolRefused(
                    N_("photo {index}: {n} faces, one person only"),
                    "two_faces",
                    args={"index": index, "n": c.faces},
                )
            if not c.ok:
                raise EnrolRefused(
                    N_("photo {index}: {problems}"),
                    "poor_quality",
                    args={"index": index, "problems": c.problems},
                )
        embeddings = [c.embedding for c in checks if c.embedding is not None]
        weights = [c.weight for c in checks if c.embedding is not None]
        pairwise = _pairwise_min(embeddings)
        if pairwise < SAME_PERSON:
            raise EnrolRefused(
                N_(
                    "the photos are not all of one person (similarity {similarity},"
                    " at least {needed} needed)"
                ),
                "not_one_person",
                {"pairwise_min": round(pairwise, 3)},
                args={"similarity": f"{pairwise:.2f}", "needed": f"{SAME_PERSON:.2f}"},
            )
        template = fuse(
            embeddings, self.pipeline.embedder_version, same_person_min(self.pipeline), weights
        )
        if live is not None and float(_unit(live) @ template.vector) < SAME_PERSON:
            raise EnrolRefused(
                N_("the face that blinked is not the person in the photos"), "blink_other_person"
            )
        try:  # the check `blinkpay-host enrol` makes too (backend/duplicates.py)
            nearest = refuse_duplicate(
                self.store.db, template.vector, token, template.embedder_version
            )
        except DuplicateFace as clash:
            raise EnrolRefused(
                DUPLICATE,  # its translation: tests/console/test_i18n.py
                "duplicate_face",
                {"nearest": clash.nearest},
                args={"token": clash.token, "similarity": f"{clash.similarity:.2f}"},
            ) from None
        return Checked(template, pairwise, nearest)

    def nearest(self, vector: np.ndarray, k: int = 3) -> list[dict[str, Any]]:
        """1:N against every template the host holds, whatever the shard or status."""
        return nearest_enrolled(self.store.db, vector, self.pipeline.embedder_version, k)


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float32) / float(np.linalg.norm(v))


def _pairwise_min(embeddings: Sequence[np.ndarray]) -> float:
    units = [_unit(e) for e in embeddings]
    if len(units) < 2:
        return 1.0
    return min(
        float(units[i] @ units[j]) for i in range(len(units)) for j in range(i + 1, len(units))
    )
