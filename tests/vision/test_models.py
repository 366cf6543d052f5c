"""Model loading: sha256 checked before loading, errors name the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from device.vision.config import VisionConfig
from device.vision.models import ROLES, ModelError, load_manifest, sha256_of, verify_file
from device.vision.pipeline import FacePipeline


def test_shipped_manifest_lists_every_role_with_matching_files() -> None:
    manifest = load_manifest()
    for role in ROLES:
        entry = manifest.entry(role)
        verify_file(entry)
        assert entry.path.stat().st_size == entry.raw["bytes"]
    assert set(manifest.entries) <= set(ROLES)


def test_corrupted_model_is_refused_naming_the_file(models_copy: Path) -> None:
    manifest = load_manifest(models_copy)
    path = manifest.entry("embedder_mobilefacenet").path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=re.escape(f"corrupted: {path}")):
        FacePipeline.from_config(VisionConfig(models_dir=models_copy))


def test_missing_model_is_refused_naming_the_file(models_copy: Path) -> None:
    path = load_manifest(models_copy).entry("detector").path
    path.unlink()
    with pytest.raises(ModelError, match=re.escape(f"missing: {path}")):
        FacePipeline.from_config(VisionConfig(models_dir=models_copy))


def test_model_swapped_for_another_with_its_hash_is_refused(models_copy: Path) -> None:
    # a valid model under the wrong role, with the manifest "fixed" to its hash:
    # the input check still refuses it
    manifest_path = models_copy / "manifest.json"
    data = json.loads(manifest_path.read_text())
    detector = data["models"]["detector"]
    mesh_file = models_copy / data["models"]["face_mesh"]["file"]
    detector["file"] = mesh_file.name
    detector["sha256"] = sha256_of(mesh_file)
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=re.escape(mesh_file.name)):
        FacePipeline.from_config(VisionConfig(models_dir=models_copy))


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "not found"), ("{not json", "unreadable"), ('{"schema": 99}', "schema")],
)
def test_bad_manifest_is_refused(tmp_path: Path, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ModelError, match=message):
        load_manifest(tmp_path)
