"""The oldest shard snapshot a terminal may take (docs/security.md, "Stale snapshots").

At registration the host's signed answer tells the terminal the version of its shard and the
host's time then. A terminal that has never synced would otherwise take any snapshot the
host ever signed: an old one, replayed while the host is down, would install customers
erased since. With the floor it refuses a snapshot older than the shard it registered for
(by version, and by the host's issue time)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.crypto.signing import write_private_file

log = logging.getLogger(__name__)

FLOOR_FILE = "shard_floor.json"


@dataclass(frozen=True)
class ShardFloor:
    version: int
    issued_at: float

    def refuses(self, snapshot: dict[str, Any]) -> str | None:
        """Why `snapshot` is older than the floor, or None."""
        if int(snapshot["version"]) < self.version:
            return f"snapshot v{snapshot['version']} is older than v{self.version}"
        issued = snapshot.get("issued_at")
        if issued is None or float(issued) < self.issued_at:
            return f"snapshot issued at {issued} is before registration ({self.issued_at:.0f})"
        return None

    def save(self, data_dir: Path) -> None:
        body = json.dumps({"version": self.version, "issued_at": self.issued_at}).encode()
        write_private_file(Path(data_dir) / FLOOR_FILE, body, overwrite=True)

    @classmethod
    def load(cls, data_dir: Path) -> ShardFloor | None:
        """The saved floor; None when the terminal was not registered over the network (or
        the file is damaged: said in the log, and no floor is better than no terminal)."""
        path = Path(data_dir) / FLOOR_FILE
        try:
            data = json.loads(path.read_text())
            return cls(int(data["version"]), float(data["issued_at"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("%s unreadable (%s): no snapshot floor", path, exc)
            return None
