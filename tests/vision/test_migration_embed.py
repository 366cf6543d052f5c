"""During an embedder migration the pipeline also runs the next embedder on each embedded
face, on that embedder's own aligned chip, tagged with its version (docs/matching.md,
"Changing the embedder")."""

from __future__ import annotations

import numpy as np
import pytest

from device.vision.config import VisionConfig
from device.vision.pipeline import NEXT_EMBED_MAX_HZ, FacePipeline


def test_the_next_embedder_runs_on_its_own_chip_tagged_with_its_version() -> None:
    portraits = pytest.importorskip("device.demo.portraits")
    try:
        rgb = portraits.load_portrait("collins")
    except Exception as exc:  # the demo extra is not installed
        pytest.skip(str(exc))
    old = FacePipeline.from_config(VisionConfig(embedder="dlib", passive_enabled=False))
    new = FacePipeline.from_config(VisionConfig(embedder="mobilefacenet", passive_enabled=False))
    shipped = old.shipped_embedders()
    assert set(shipped.values()) == {"dlib", "mobilefacenet"}
    assert shipped[new.embedder.version] == "mobilefacenet"  # type: ignore[union-attr]

    old.next_embedder = old.load_embedder("mobilefacenet")
    (face,) = old.process(rgb, 0.0)
    assert (face.embedder_version, face.embedding.shape) == (old.embedder.version, (128,))  # type: ignore[union-attr]
    assert face.next_embedder_version == new.embedder.version  # type: ignore[union-attr]
    (alone,) = new.process(rgb, 0.0)
    # the same vector MobileFaceNet gives as the terminal's own embedder
    assert float(np.dot(face.next_embedding, alone.embedding)) > 0.999  # type: ignore[arg-type]

    # at most NEXT_EMBED_MAX_HZ per track: the next frame of the same track skips it
    (soon,) = old.process(rgb, 0.5 / NEXT_EMBED_MAX_HZ)
    assert soon.embedding is not None and soon.next_embedding is None
    (later,) = old.process(rgb, 1.5 / NEXT_EMBED_MAX_HZ)
    assert later.next_embedding is not None
