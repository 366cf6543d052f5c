"""One call from frame to faces: detect, track, landmarks, eye openness, align, gate, embed,
and the passive anti-spoofing cue."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from device.paths import default_models_dir
from device.vision.align import chip_matrix, dlib5_from_mesh, extract_chip
from device.vision.config import VisionConfig
from device.vision.detector import Detection, FaceDetector
from device.vision.embedder import EMBEDDER_ROLES, FaceEmbedder
from device.vision.eyes import EyeOpenness, IrisModel
from device.vision.landmarks import (
    FaceMesh,
    head_pose,
    roi_from_detection,
    roi_from_landmarks,
)
from device.vision.light import FaceLight, measure_light
from device.vision.models import Manifest, ModelError, load_manifest
from device.vision.passive import PassiveCue, PassiveScore
from device.vision.quality import Quality, assess, fusion_weight
from device.vision.tracking import FaceTracker

DEFAULT_CHIP_SIZE = 150
DEFAULT_CHIP_PADDING = 0.25
NEXT_EMBED_MAX_HZ = 5.0  # during an embedder migration (device/shell/migration.py)


@dataclass
class FaceResult:
    """One face in one frame. Coordinates are frame pixels (x right, y down)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 from the detector
    score: float  # detector confidence 0..1
    keypoints: np.ndarray  # (6, 2) detector keypoints, see Detection
    landmarks: np.ndarray  # (468, 3) face mesh; z in x's scale
    points5: np.ndarray  # (5, 2) dlib shape_predictor_5 points predicted from the mesh
    eyes: EyeOpenness | None  # eye aspect ratios from the iris model (None: not asked for)
    quality: Quality
    track_id: int | None  # stable across frames for the same face; None when not tracking
    # aligned RGB chip for the embedder (memory only): the embedder's own geometry (the
    # 112 px ArcFace chip for MobileFaceNet); dlib's 150 px chip without an embedder
    chip: np.ndarray = field(repr=False)
    embedding: np.ndarray | None = None  # L2-normalised float32, None unless embedded
    embedder_version: str | None = None  # the embedder of `embedding`
    # during an embedder migration (device/shell/migration.py): the next embedder's vector
    next_embedding: np.ndarray | None = None
    next_embedder_version: str | None = None
    # passive anti-spoofing cue; None when disabled or not scored. On a tracked face it
    # may be from an earlier frame of the same track (see its timestamp): it runs at
    # most vision.passive_max_hz per track
    passive: PassiveScore | None = None
    # face and background luminance for the illumination challenge (device.vision.light)
    light: FaceLight | None = None
    # this frame's weight when a track's embeddings are fused (quality.fusion_weight:
    # sharpness, pose, size, eyes open)
    weight: float = 1.0

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


@dataclass
class StageTimes:
    """Milliseconds spent per stage in the last process() call (for the benchmark)."""

    detect: float = 0.0
    landmarks: float = 0.0
    eyes: float = 0.0
    align: float = 0.0
    embed: float = 0.0
    passive: float = 0.0
    light: float = 0.0  # face and background luminance for the illumination challenge


class FacePipeline:
    def __init__(
        self,
        config: VisionConfig,
        detector: FaceDetector,
        mesh: FaceMesh,
        iris: IrisModel,
        embedder: FaceEmbedder | None,
        passive: PassiveCue | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.mesh = mesh
        self.iris = iris
        self.embedder = embedder
        self.passive = passive
        self._passive_by_track: dict[int, PassiveScore] = {}
        self.tracker = FaceTracker(config.track_min_iou, config.track_max_age_s)
        # the quality gate's chip: dlib's geometry at 150 px whatever the embedder (its
        # sharpness and brightness limits were set on it)
        self.chip_size = DEFAULT_CHIP_SIZE
        self.chip_padding = DEFAULT_CHIP_PADDING
        self.last_times = StageTimes()
        self.manifest: Manifest | None = None  # set by from_config (embedder changes)
        # the embedder a shard migrates to, also run on every embedded face (or None)
        self.next_embedder: FaceEmbedder | None = None
        self._next_at: dict[int, float] = {}  # track -> time of its last next-embedder run

    @classmethod
    def from_config(cls, config: VisionConfig, *, with_embedder: bool = True) -> FacePipeline:
        """Load (and sha256-check) every model named by the manifest; ModelError if any
        is missing or corrupted."""
        manifest = load_manifest(config.models_dir or default_models_dir())
        detector = FaceDetector(manifest, config.threads, config.detector_min_score)
        mesh = FaceMesh(manifest, config.threads)
        iris = IrisModel(manifest, config.threads)
        embedder = (
            FaceEmbedder(manifest, config.threads, config.embedder) if with_embedder else None
        )
        passive = None
        if config.passive_enabled:
            passive = PassiveCue(
                manifest,
                config.threads,
                min_detection_score=config.passive_min_detection_score,
                threshold=config.passive_threshold,
                min_context_scale=config.passive_min_context_scale,
            )
        pipeline = cls(config, detector, mesh, iris, embedder, passive)
        pipeline.manifest = manifest
        return pipeline

    # -- embedder change (docs/matching.md, "Changing the embedder") ---------------------

    def shipped_embedders(self) -> dict[str, str]:
        """Embedder version -> `vision.embedder` name, for every embedder in the manifest."""
        if self.manifest is None:
            return {} if self.embedder is None else {self.embedder.version: self.embedder.name}
        found: dict[str, str] = {}
        for name, role in EMBEDDER_ROLES.items():
            entry = self.manifest.entries.get(role)
            if entry is not None:
                found[str(entry.raw.get("embedder_version", entry.version))] = name
        return found

    def load_embedder(self, name: str) -> FaceEmbedder:
        """One of the shipped embedders, by its `vision.embedder` name."""
        if self.manifest is None:
            raise ModelError("pipeline was built without a manifest")
        return FaceEmbedder(self.manifest, self.config.threads, name)

    @property
    def embedder_version(self) -> str:
        if self.embedder is None:
            raise ModelError("pipeline was built without the embedder")
        return self.embedder.version

    def process(
        self,
        rgb: np.ndarray,
        timestamp: float,
        *,
        embed: bool = True,
        track: bool = True,
        gate: bool = True,
        eyes: bool = True,
        passive: bool = True,
    ) -> list[FaceResult]:
        """Faces in one RGB uint8 frame (H, W, 3), largest first.

        embed=False is the cheap per-frame mode (landmarks and eye openness only, for
        blink tracking at full frame rate); call embed(face) later when needed. With
        gate=True a face is embedded only when its quality gate passes. eyes=False skips
        eye openness (two iris-model runs per face) where no blink is watched, e.g. when
        embedding photos. passive=False skips the passive cue (when enabled in the
        config it scores the vision.passive_max_faces largest faces: tracked faces at
        most passive_max_hz per track, untracked ones on every call).
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("frame must be RGB uint8 (H, W, 3)")
        times = StageTimes()
        t0 = time.perf_counter()
        detections = self.detect(rgb)
        times.detect = (time.perf_counter() - t0) * 1000
        ids: list[int | None] = [None] * len(detections)
        if track:
            ids = list(self.tracker.update([d.box for d in detections], timestamp))
        faces = [
            self._face(rgb, det, tid, times, eyes) for det, tid in zip(detections, ids, strict=True)
        ]
        t = time.perf_counter()
        for face in faces:  # cheap (a few thousand pixels): the challenge reads the bound one
            face.light = measure_light(rgb, face.box)
        times.light = (time.perf_counter() - t) * 1000
        # Read once: the shell may change embedders between frames, never within one.
        embedder, next_embedder = self.embedder, self.next_embedder
        if embed and embedder is not None:
            for face in faces:
                if face.quality.ok or not gate:
                    t = time.perf_counter()
                    face.embedding = embedder.embed(_chip_for(embedder, rgb, face))
                    face.embedder_version = embedder.version
                    if next_embedder is not None and self._next_due(face, timestamp):
                        chip = _chip_for(next_embedder, rgb, face)
                        face.next_embedding = next_embedder.embed(chip)
                        face.next_embedder_version = next_embedder.version
                    times.embed += (time.perf_counter() - t) * 1000
        if passive and self.passive is not None:
            t = time.perf_counter()
            self._attach_passive(rgb, faces, timestamp)
            times.passive = (time.perf_counter() - t) * 1000
        self.last_times = times
        return faces

    def _attach_passive(self, rgb: np.ndarray, faces: list[FaceResult], timestamp: float) -> None:
        assert self.passive is not None
        interval = 1.0 / self.config.passive_max_hz
        latest: dict[int, PassiveScore] = {}
        for face in faces[: self.config.passive_max_faces]:
            last = self._passive_by_track.get(face.track_id) if face.track_id is not None else None
            # a clock that went backwards (a replayed clip) also means "run again"
            if last is not None and 0.0 <= timestamp - last.timestamp < interval:
                face.passive = last
            else:
                face.passive = self.passive.score(rgb, face.box, face.score, timestamp)
            if face.track_id is not None:
                latest[face.track_id] = face.passive
        self._passive_by_track = latest  # tracks out of view are dropped

    def _next_due(self, face: FaceResult, timestamp: float) -> bool:
        """The migration's embedder runs at most NEXT_EMBED_MAX_HZ per track (a few fused
        frames are enough for its template; the match's embedder runs on every frame)."""
        if face.track_id is None:
            return True
        last = self._next_at.get(face.track_id)
        if last is not None and 0.0 <= timestamp - last < 1.0 / NEXT_EMBED_MAX_HZ:
            return False
        if len(self._next_at) > 64:  # tracks long gone
            self._next_at.clear()
        self._next_at[face.track_id] = timestamp
        return True

    def passive_score(
        self, rgb: np.ndarray, face: FaceResult, timestamp: float = 0.0
    ) -> PassiveScore:
        """Score one face now, whatever the rate limit; stores and returns it."""
        if self.passive is None:
            raise ModelError("the passive cue is disabled (vision.passive_enabled)")
        face.passive = self.passive.score(rgb, face.box, face.score, timestamp)
        return face.passive

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """The detector's faces in one RGB frame, largest first, at most max_faces."""
        detections = self.detector.detect(rgb)
        detections.sort(key=lambda d: d.width * d.height, reverse=True)
        return detections[: self.config.max_faces]

    def analyse(self, rgb: np.ndarray, detection: Detection, *, eyes: bool = True) -> FaceResult:
        """One chosen detection through landmarks, alignment, quality (and eye openness),
        without tracking or embedding: for callers that pick the face themselves."""
        return self._face(rgb, detection, None, StageTimes(), eyes)

    def _face(
        self,
        rgb: np.ndarray,
        det: Detection,
        track_id: int | None,
        times: StageTimes,
        with_eyes: bool,
    ) -> FaceResult:
        t = time.perf_counter()
        mesh = self.mesh.run(rgb, roi_from_detection(det))
        if self.config.mesh_refine and mesh.presence >= 0.5:
            mesh = self.mesh.run(rgb, roi_from_landmarks(mesh.points))
        times.landmarks += (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        eyes = self.iris.openness(rgb, mesh.points) if with_eyes else None
        times.eyes += (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        points5 = dlib5_from_mesh(mesh.points)
        quality_chip = extract_chip(
            rgb, chip_matrix(points5, self.chip_size, self.chip_padding), self.chip_size
        )
        chip = quality_chip
        if self.embedder is not None and self.embedder.alignment != "dlib-5point":
            chip = self.embedder.chip(rgb, mesh.points)
        times.align += (time.perf_counter() - t) * 1000
        yaw, pitch = head_pose(mesh.points)
        quality = assess(
            self.config, min(det.width, det.height), yaw, pitch, quality_chip, mesh.presence
        )
        return FaceResult(
            box=det.box,
            score=det.score,
            keypoints=det.keypoints,
            landmarks=mesh.points,
            points5=points5,
            eyes=eyes,
            quality=quality,
            track_id=track_id,
            chip=chip,
            weight=fusion_weight(self.config, quality, eyes.mean if eyes is not None else None),
        )

    def embed(self, face: FaceResult) -> np.ndarray:
        """Embed a face found earlier (e.g. in the cheap mode); stores and returns it."""
        if self.embedder is None:
            raise ModelError("pipeline was built without the embedder")
        face.embedding = self.embedder.embed(face.chip)
        face.embedder_version = self.embedder.version
        return face.embedding

    def reset_tracking(self) -> None:
        self.tracker.reset()
        self._passive_by_track = {}


def _chip_for(embedder: FaceEmbedder, rgb: np.ndarray, face: FaceResult) -> np.ndarray:
    """The face's chip in this embedder's geometry: the one made with the face when it
    fits, else made now from the frame and the mesh (the migration's embedder, or one the
    shell switched to after the face was aligned)."""
    size = embedder.chip_size  # the shipped embedders' chips differ in size (112, 150)
    if face.chip.shape[:2] == (size, size):
        return face.chip
    return embedder.chip(rgb, face.landmarks)
