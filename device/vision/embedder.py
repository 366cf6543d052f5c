"""The face embedder: dlib's ResNet rebuilt as a full-int8 TFLite model.

Input is the aligned 150x150 RGB chip as uint8 (dlib's mean/scale are baked into the
model); the 128-D output is dequantised with the output tensor's parameters and
L2-normalised, so cosine similarity is a dot product.
"""

from __future__ import annotations

import numpy as np

from device.vision.models import Manifest, ModelError, load_model
from device.vision.runtime import dequantise, quantise


class FaceEmbedder:
    def __init__(self, manifest: Manifest, threads: int) -> None:
        self.entry, self.model = load_model(manifest, "embedder", threads)
        raw = self.entry.raw
        self.dim = int(raw.get("embedding_dim", 128))
        self.version = str(raw.get("embedder_version", self.entry.version))
        chip = raw.get("chip", {})
        self.chip_size = int(chip.get("size", 150))
        self.chip_padding = float(chip.get("padding", 0.25))
        shape = self.entry.input_shape
        if shape[1:] != (self.chip_size, self.chip_size, 3):
            raise ModelError(
                f"{self.entry.path.name}: input {list(shape)} is not a {self.chip_size}px RGB chip"
            )
        self._range = self.entry.input_range()
        self._output = self.model.output_by_size(self.dim)

    def embed(self, chip: np.ndarray) -> np.ndarray:
        """One RGB uint8 chip (size, size, 3) -> L2-normalised float32 (dim,)."""
        if chip.shape != (self.chip_size, self.chip_size, 3) or chip.dtype != np.uint8:
            raise ValueError(f"chip must be uint8 {self.chip_size}x{self.chip_size}x3")
        spec = self.model.inputs[0]
        if self._range is None:
            tensor = chip[None].astype(spec.dtype)
        else:
            low, high = self._range
            tensor = quantise(chip[None].astype(np.float32) * ((high - low) / 255.0) + low, spec)
        out = self.model.run(tensor)[self._output.index]
        vector = dequantise(out, self._output).reshape(-1)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0.0:
            raise ModelError(f"{self.entry.path.name}: embedder returned a zero or invalid vector")
        return (vector / norm).astype(np.float32)
