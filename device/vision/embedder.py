"""The face embedders the terminal ships, chosen by `vision.embedder`.

- `mobilefacenet` (default): sirius-ai's MobileFaceNet, 192-D, on the 112x112 ArcFace
  5-point chip. The model takes a fixed batch of two: the face and its mirror image go
  in together and their embeddings are summed (the usual flip test-time augmentation).
- `dlib`: dlib's ResNet rebuilt as a full-int8 model, 128-D, on dlib's 150x150 chip
  (dlib's mean/scale baked into the model, uint8 input).

Each is described by its manifest entry (input contract, chip geometry, embedding size,
embedder_version); the output is dequantised when quantised and L2-normalised, so cosine
similarity is a dot product. Templates and shards are keyed by `version`: vectors of two
embedders are never compared.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from device.vision.align import (
    arcface5_from_mesh,
    arcface_matrix,
    chip_matrix,
    dlib5_from_mesh,
    extract_chip,
)
from device.vision.models import Manifest, ModelError, load_model
from device.vision.runtime import dequantise, quantise

EmbedderName = Literal["mobilefacenet", "dlib"]
EMBEDDER_ROLES: dict[str, str] = {
    "mobilefacenet": "embedder_mobilefacenet",
    "dlib": "embedder_dlib",
}
ALIGNMENTS = ("arcface-5point", "dlib-5point")
# Below this cosine to the others, one embedding of a person is probably someone else or a
# bad capture (device.vision.templates.fuse drops it). dlib: same-person cosines are mostly
# above 0.85. MobileFaceNet spreads faces far wider (strangers near 0, the same person
# mostly 0.4-0.9): 0.3, well under the 0.5th percentile (0.52) of a face against the mean
# of the same person's other faces on LFW view 1 DevTrain (benchmarks/calibrate_match.py).
SAME_PERSON_MIN_COSINE: dict[str, float] = {"mobilefacenet": 0.3, "dlib": 0.8}


class FaceEmbedder:
    def __init__(self, manifest: Manifest, threads: int, name: str = "mobilefacenet") -> None:
        if name not in EMBEDDER_ROLES:
            raise ModelError(f"unknown embedder {name!r} (one of {', '.join(EMBEDDER_ROLES)})")
        self.name = name
        self.same_person_min = SAME_PERSON_MIN_COSINE[name]
        self.entry, self.model = load_model(manifest, EMBEDDER_ROLES[name], threads)
        raw = self.entry.raw
        where = self.entry.path.name
        self.dim = int(raw.get("embedding_dim", 128))
        self.version = str(raw.get("embedder_version", self.entry.version))
        chip = raw.get("chip", {})
        self.chip_size = int(chip.get("size", 150))
        self.chip_padding = float(chip.get("padding", 0.25))
        self.alignment = str(chip.get("alignment", "dlib-5point"))
        if self.alignment not in ALIGNMENTS:
            raise ModelError(f"{where}: unknown chip alignment {self.alignment!r}")
        shape = self.entry.input_shape
        if len(shape) != 4 or shape[1:] != (self.chip_size, self.chip_size, 3):
            raise ModelError(f"{where}: input {list(shape)} is not a {self.chip_size}px RGB chip")
        self.batch = shape[0]
        self.mirror = bool(raw.get("mirror", False))
        if self.batch != (2 if self.mirror else 1):
            raise ModelError(f"{where}: batch {self.batch} does not fit mirror={self.mirror}")
        inp = raw["input"]
        if "pixel_mean" in inp:  # float input: (x - mean) * scale
            self._affine: tuple[float, float] | None = (
                float(inp["pixel_mean"]),
                float(inp["pixel_scale"]),
            )
            self._range = None
        else:
            self._affine = None
            self._range = self.entry.input_range()
        self._output = self.model.output_by_size(self.dim * self.batch)

    def chip(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The aligned RGB uint8 chip this embedder takes, from the frame and the face mesh."""
        if self.alignment == "arcface-5point":
            matrix = arcface_matrix(arcface5_from_mesh(landmarks), self.chip_size)
        else:
            matrix = chip_matrix(dlib5_from_mesh(landmarks), self.chip_size, self.chip_padding)
        return extract_chip(rgb, matrix, self.chip_size)

    def _tensor(self, chips: np.ndarray) -> np.ndarray:
        spec = self.model.inputs[0]
        if self._affine is not None:
            mean, scale = self._affine
            return quantise((chips.astype(np.float32) - mean) * scale, spec)
        if self._range is None:
            return chips.astype(spec.dtype)
        low, high = self._range
        return quantise(chips.astype(np.float32) * ((high - low) / 255.0) + low, spec)

    def embed(self, chip: np.ndarray) -> np.ndarray:
        """One RGB uint8 chip (size, size, 3) -> L2-normalised float32 (dim,). With a
        mirroring model the chip and its mirror image run as one batch of two and their
        embeddings are summed before normalising."""
        if chip.shape != (self.chip_size, self.chip_size, 3) or chip.dtype != np.uint8:
            raise ValueError(f"chip must be uint8 {self.chip_size}x{self.chip_size}x3")
        chips = np.stack([chip, chip[:, ::-1]]) if self.mirror else chip[None]
        out = self.model.run(self._tensor(chips))[self._output.index]
        vector = dequantise(out, self._output).reshape(self.batch, self.dim).sum(axis=0)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0.0:
            raise ModelError(f"{self.entry.path.name}: embedder returned a zero or invalid vector")
        return (vector / norm).astype(np.float32)
