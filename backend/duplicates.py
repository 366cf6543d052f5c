"""The duplicate-face check of every enrolment path (the console, `blinkpay-host enrol`):
1:N against every template the host holds, whatever the shard or status. A face already
enrolled under another account is refused: one person, one account."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.db import HostDb
from device.core.config import MatchConfig
from device.core.match import CALIBRATED
from device.errors import BlinkpayError
from device.vision.embedder import EMBEDDER_ROLES
from device.vision.models import ModelError, load_manifest


def duplicate_threshold(embedder_version: str) -> float:
    """Where the terminal would take two faces for one customer (the PIN threshold of the
    shipped embedder that makes `embedder_version` templates): a duplicate from there on.
    Each embedder has its own: a dlib cosine of 0.87 is two strangers, a MobileFaceNet one
    is one person."""
    manifest = load_manifest()
    for name, role in EMBEDDER_ROLES.items():
        try:
            entry = manifest.entry(role)
        except ModelError:
            continue
        if str(entry.raw.get("embedder_version", entry.version)) == embedder_version:
            return float(CALIBRATED[name]["pin_threshold"])
    return MatchConfig().pin_threshold


# The console shows it in the operator's language (backend/console/enrolment.py).
DUPLICATE = (
    "this face is already enrolled as {token} (similarity {similarity});"
    " one person, one account: change that account instead"
)


class DuplicateFace(BlinkpayError):
    """This face is enrolled already, under another account."""

    def __init__(self, token: str, similarity: float, nearest: list[dict[str, Any]]) -> None:
        super().__init__(DUPLICATE.format(token=token, similarity=f"{similarity:.2f}"))
        self.token = token
        self.similarity = similarity
        self.nearest = nearest


def nearest_enrolled(
    db: HostDb, vector: np.ndarray, embedder_version: str, k: int = 3
) -> list[dict[str, Any]]:
    """The k accounts whose templates of `embedder_version` (the current ones and those a
    migration collected) are closest to `vector` (cosine), closest first."""
    rows = db.query(
        "SELECT token, vector FROM templates WHERE embedder_version = ?"
        " UNION ALL SELECT token, vector FROM next_templates WHERE embedder_version = ?",
        [embedder_version, embedder_version],
    )
    probe = np.asarray(vector, np.float32)
    scored = []
    for row in rows:
        other = np.frombuffer(row["vector"], dtype="<f4")
        if other.shape[0] == probe.shape[0]:
            scored.append((float(other @ probe), row["token"]))
    scored.sort(reverse=True)
    return [{"token": t, "similarity": round(s, 3)} for s, t in scored[:k]]


def refuse_duplicate(
    db: HostDb, vector: np.ndarray, token: str, embedder_version: str
) -> list[dict[str, Any]]:
    """The nearest accounts; DuplicateFace when one other than `token` is this face."""
    nearest = nearest_enrolled(db, vector, embedder_version)
    limit = duplicate_threshold(embedder_version)
    clash = [n for n in nearest if n["token"] != token and n["similarity"] >= limit]
    if clash:
        raise DuplicateFace(clash[0]["token"], clash[0]["similarity"], nearest)
    return nearest
