"""The duplicate-face check of every enrolment path (the console, `blinkpay-host enrol`):
1:N against every template the host holds, whatever the shard or status. A face already
enrolled under another account is refused: one person, one account."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.db import HostDb
from device.core.config import MatchConfig
from device.errors import BlinkpayError

# At the terminal's PIN threshold it would take the two for one customer: refuse there.
DUPLICATE = MatchConfig().pin_threshold


class DuplicateFace(BlinkpayError):
    """This face is enrolled already, under another account."""

    def __init__(self, token: str, similarity: float, nearest: list[dict[str, Any]]) -> None:
        super().__init__(
            f"this face is already enrolled as {token} (similarity {similarity:.2f});"
            " one person, one account: change that account instead"
        )
        self.token = token
        self.similarity = similarity
        self.nearest = nearest


def nearest_enrolled(db: HostDb, vector: np.ndarray, k: int = 3) -> list[dict[str, Any]]:
    """The k accounts whose templates are closest to `vector` (cosine), closest first."""
    rows = db.query("SELECT token, vector FROM templates")
    probe = np.asarray(vector, np.float32)
    scored = []
    for row in rows:
        other = np.frombuffer(row["vector"], dtype="<f4")
        if other.shape[0] == probe.shape[0]:
            scored.append((float(other @ probe), row["token"]))
    scored.sort(reverse=True)
    return [{"token": t, "similarity": round(s, 3)} for s, t in scored[:k]]


def refuse_duplicate(db: HostDb, vector: np.ndarray, token: str) -> list[dict[str, Any]]:
    """The nearest accounts; DuplicateFace when one other than `token` is this face."""
    nearest = nearest_enrolled(db, vector)
    clash = [n for n in nearest if n["token"] != token and n["similarity"] >= DUPLICATE]
    if clash:
        raise DuplicateFace(clash[0]["token"], clash[0]["similarity"], nearest)
    return nearest
