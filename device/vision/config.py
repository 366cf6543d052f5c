"""Vision settings: models, runtime threads, detection and quality gates, passive cue."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class VisionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    models_dir: Path | None = None  # None: device.paths.default_models_dir()
    threads: int = Field(default=2, ge=1, le=8)
    # which shipped face embedder (device/vision/embedder.py, models/README.md): its
    # embedder_version keys templates and shards, so a change needs the shard of that
    # version (docs/matching.md)
    embedder: Literal["mobilefacenet", "dlib"] = "mobilefacenet"
    detector_min_score: float = Field(default=0.6, gt=0.0, lt=1.0)
    min_face_px: int = Field(default=80, ge=24, le=2000)
    max_yaw_deg: float = Field(default=30.0, gt=0.0, le=90.0)
    max_pitch_deg: float = Field(default=30.0, gt=0.0, le=90.0)
    min_sharpness: float = Field(default=40.0, ge=0.0)
    min_brightness: float = Field(default=40.0, ge=0.0, le=255.0)
    max_brightness: float = Field(default=220.0, ge=0.0, le=255.0)
    max_faces: int = Field(default=4, ge=1, le=32)
    # second face-mesh pass on the ROI from the first pass's landmarks (MediaPipe's
    # tracking ROI). Off: one more mesh call per face for no measured gain (LFW pairs
    # accuracy 98.91 % with it, 98.95 % without, DevTrain)
    mesh_refine: bool = False
    track_min_iou: float = Field(default=0.3, gt=0.0, lt=1.0)
    track_max_age_s: float = Field(default=1.0, gt=0.0, le=60.0)
    # Passive anti-spoofing cue (MiniFASNet pair, device/vision/passive.py; docs/liveness.md).
    # The session fuses it with the blink and the challenge (device/core/liveness_gate.py).
    passive_enabled: bool = True
    # None: the publisher's rule (real when class 1 has the largest summed softmax); a
    # number: real when the models' mean real probability reaches it
    passive_threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    # below this detector score the crops cannot be trusted: no verdict, never "real"
    passive_min_detection_score: float = Field(default=0.75, gt=0.0, lt=1.0)
    # per tracked face; between runs a face carries its track's last score (with its time)
    # A face box the frame cannot hold at this scale gives no verdict (too little context).
    passive_min_context_scale: float = Field(default=2.0**0.5, ge=1.0, le=4.0)
    passive_max_hz: float = Field(default=5.0, gt=0.0, le=60.0)
    passive_max_faces: int = Field(default=1, ge=1, le=32)  # the largest faces only

    @model_validator(mode="after")
    def _brightness_range(self) -> VisionConfig:
        if self.min_brightness >= self.max_brightness:
            raise ValueError("min_brightness must be below max_brightness")
        return self
