"""The remote-control state file (net_state.json in the data directory): the last applied
config version, and every command request id accepted lately with the outcome the terminal
recorded for it, so that a request id runs once, even across a restart, and a repeat of one
that ran is answered with the same result.

    {"config_version": 7,
     "seen": {"<request id>": {"at": 1795000000.0,
                               "outcome": {"ok": true, "detail": "...", "result": {...}}},
              "<request id>": {"at": 1795000100.0}}}

An entry without an outcome was accepted and had not finished (a crash mid-command, or
still running). A bare number is an entry of a terminal from before outcomes were kept: it
ran, its outcome is unknown. Ids are kept at least COMMAND_MEMORY_S after they arrived, at
most MAX_SEEN of them; the results kept are bounded too (older ones keep ok and detail).
Written atomically, fsynced and 0600 (device.crypto.signing.write_private_file)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.crypto.signing import write_private_file

MAX_SEEN = 4096  # request ids remembered
MAX_KEPT_RESULTS = 256 * 1024  # characters of result JSON kept over all ids, newest first


@dataclass
class Seen:
    at: float  # when this terminal accepted it (its wall clock)
    outcome: dict[str, Any] | None = None  # {ok, detail, result} once it finished
    legacy: bool = False  # from a state file without outcomes: ran, outcome unknown


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _outcome(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
        return None
    result = value.get("result")
    return {
        "ok": value["ok"],
        "detail": str(value.get("detail", ""))[:512],
        "result": result if isinstance(result, dict) else {},
    }


def _seen(value: Any) -> Seen | None:
    if _finite(value):
        return Seen(float(value), legacy=True)
    if isinstance(value, dict) and _finite(value.get("at")):
        return Seen(float(value["at"]), _outcome(value.get("outcome")))
    return None


def load_state(path: Path) -> tuple[int, dict[str, Seen]]:
    """(config version, seen); a missing or unreadable file is a fresh start."""
    try:
        state = json.loads(Path(path).read_text())
        version = int(state["config_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, {}
    raw = state.get("seen", {})
    seen = {}
    for request_id, value in raw.items() if isinstance(raw, dict) else ():
        entry = _seen(value)
        if entry is not None:
            seen[str(request_id)] = entry
    return version, seen


def prune(seen: dict[str, Seen], horizon: float) -> dict[str, Seen]:
    """The newest MAX_SEEN ids that arrived at or after `horizon`."""
    fresh = sorted(((s.at, r) for r, s in seen.items() if s.at >= horizon), reverse=True)
    return {r: seen[r] for _, r in fresh[:MAX_SEEN]}


def save_state(path: Path, config_version: int, seen: dict[str, Seen]) -> None:
    """`seen` newest first (prune's order): results past the budget are not kept."""
    budget = MAX_KEPT_RESULTS
    entries: dict[str, Any] = {}
    for request_id, entry in seen.items():
        if entry.legacy:
            entries[request_id] = entry.at
            continue
        item: dict[str, Any] = {"at": entry.at}
        if entry.outcome is not None:
            outcome = dict(entry.outcome)
            size = len(json.dumps(outcome["result"]))
            if size > budget:
                outcome["result"] = {}
            else:
                budget -= size
            item["outcome"] = outcome
        entries[request_id] = item
    state = {"config_version": config_version, "seen": entries}
    write_private_file(Path(path), json.dumps(state).encode(), overwrite=True)
