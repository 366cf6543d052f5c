"""The camera path's blink check: the terminal's pipeline and blink rule on a burst of
frames, and the one-time proof it gives."""

from __future__ import annotations

import numpy as np

from backend.console.app import load_pipeline
from backend.console.blink import BlinkProofs, measure
from device.core.config import LivenessConfig
from tests.console.conftest import blinking, face_crop


def test_a_painted_blink_is_live_and_a_still_face_is_not() -> None:
    pipeline = load_pipeline(None)
    frames = blinking(face_crop("collins"))
    live = measure(pipeline, [(i / 15, f) for i, f in enumerate(frames)], LivenessConfig())
    assert live.result.live and live.embedding is not None
    still = measure(pipeline, [(i / 15, frames[0]) for i in range(30)], LivenessConfig())
    assert not still.result.live and str(still.result.reason) == "no_blink"


def test_a_proof_is_for_one_session_and_one_use() -> None:
    proofs = BlinkProofs()
    face = np.ones(128, np.float32)
    proof = proofs.issue("session-a", face)
    assert proofs.take("session-b", proof) is None  # another session: refused, and spent
    proof = proofs.issue("session-a", face)
    assert proofs.take("session-a", proof) is not None
    assert proofs.take("session-a", proof) is None
