"""Vision fixtures: the shipped models loaded once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from device.paths import default_models_dir
from device.vision.config import VisionConfig
from device.vision.pipeline import FacePipeline


@pytest.fixture(scope="session")
def pipeline() -> FacePipeline:
    return FacePipeline.from_config(VisionConfig(threads=1))


@pytest.fixture
def models_copy(tmp_path: Path) -> Path:
    """A private copy of the models folder that a test may damage."""
    target = tmp_path / "models"
    target.mkdir()
    source = default_models_dir()
    shutil.copy(source / "manifest.json", target)
    for path in source.glob("*.tflite"):
        shutil.copy(path, target)
    return target
