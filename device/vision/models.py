"""The shipped models, read only through models/manifest.json.

Every file's sha256 is checked before it is loaded and its input tensor is checked
against the manifest, so a missing, corrupted or mismatched model stops start-up with
an error naming the file instead of producing wrong faces later.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import BlinkpayError
from device.paths import default_models_dir
from device.vision.runtime import TensorSpec, TFLiteModel

MANIFEST_NAME = "manifest.json"
SUPPORTED_SCHEMA = 1
ROLES = (
    "detector",
    "face_mesh",
    "iris",
    "embedder_mobilefacenet",
    "embedder_dlib",
    "passive_v2",
    "passive_v1se",
)


class ModelError(BlinkpayError):
    """A model file or the manifest is missing, corrupted or does not match."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelEntry:
    """One role's manifest entry, with the fields the runtime relies on validated."""

    role: str
    path: Path
    sha256: str
    version: str
    input_shape: tuple[int, ...]
    input_dtype: str
    normalisation: str
    raw: dict[str, Any]

    def input_range(self) -> tuple[float, float] | None:
        """Float input range the model expects; None means raw 0..255 pixels (uint8 input)."""
        text = self.normalisation.replace(" ", "")
        if "[0,255]" in text:  # raw pixel values in a float tensor
            return (0.0, 255.0)
        if "[-1,1]" in text:
            return (-1.0, 1.0)
        if "[0,1]" in text:
            return (0.0, 1.0)
        if self.input_dtype == "uint8":
            return None
        raise ModelError(f"{self.path.name}: unknown input normalisation {self.normalisation!r}")

    def output_tensor_name(self, key: str) -> str | None:
        output = self.raw.get("output", {})
        item = output.get(key) if isinstance(output, dict) else None
        return item.get("tensor") if isinstance(item, dict) else None


@dataclass(frozen=True)
class Manifest:
    directory: Path
    entries: dict[str, ModelEntry]

    def entry(self, role: str) -> ModelEntry:
        if role not in self.entries:
            raise ModelError(
                f"{self.directory / MANIFEST_NAME}: no {role!r} model "
                f"(has: {', '.join(sorted(self.entries)) or 'none'})"
            )
        return self.entries[role]


def _parse_entry(directory: Path, role: str, raw: Any) -> ModelEntry:
    where = f"{directory / MANIFEST_NAME} [{role}]"
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: entry is not an object")
    try:
        inp = raw["input"]
        shape = tuple(int(d) for d in inp["shape"])
        return ModelEntry(
            role=role,
            path=directory / str(raw["file"]),
            sha256=str(raw["sha256"]).lower(),
            version=str(raw["version"]),
            input_shape=shape,
            input_dtype=str(inp["dtype"]),
            normalisation=str(inp.get("normalisation", "")),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: missing or invalid field ({exc})") from None


def load_manifest(directory: Path | None = None) -> Manifest:
    directory = Path(directory) if directory is not None else default_models_dir()
    path = directory / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"model manifest not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest unreadable: {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SUPPORTED_SCHEMA:
        raise ModelError(f"{path}: unsupported manifest schema (want {SUPPORTED_SCHEMA})")
    models = data.get("models")
    if not isinstance(models, dict):
        raise ModelError(f"{path}: no 'models' object")
    entries = {role: _parse_entry(directory, role, raw) for role, raw in models.items()}
    return Manifest(directory, entries)


def verify_file(entry: ModelEntry) -> None:
    """Raise ModelError unless the file exists and its sha256 matches the manifest."""
    if not entry.path.is_file():
        raise ModelError(f"model file missing: {entry.path} ({entry.role})")
    actual = sha256_of(entry.path)
    if actual != entry.sha256:
        raise ModelError(
            f"model file corrupted: {entry.path} ({entry.role}): sha256 {actual[:12]}... "
            f"does not match the manifest's {entry.sha256[:12]}..."
        )


def load_model(manifest: Manifest, role: str, threads: int) -> tuple[ModelEntry, TFLiteModel]:
    """Verify then load one role's model, checking its input against the manifest."""
    entry = manifest.entry(role)
    verify_file(entry)
    try:
        model = TFLiteModel(entry.path, threads)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"model file not loadable: {entry.path}: {exc}") from None
    _check_input(entry, model.inputs)
    return entry, model


def _check_input(entry: ModelEntry, inputs: list[TensorSpec]) -> None:
    if len(inputs) != 1:
        raise ModelError(f"{entry.path.name}: expected 1 input tensor, found {len(inputs)}")
    spec = inputs[0]
    if spec.shape != entry.input_shape:
        raise ModelError(
            f"{entry.path.name}: input shape {list(spec.shape)} != manifest "
            f"{list(entry.input_shape)}"
        )
    if spec.dtype != np.dtype(entry.input_dtype):
        raise ModelError(
            f"{entry.path.name}: input dtype {spec.dtype} != manifest {entry.input_dtype}"
        )
