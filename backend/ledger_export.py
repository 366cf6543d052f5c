"""A terminal's ledger as the host holds it, signed: what `blinkpay db recover` restores a
terminal's lost ledger from (docs/reliability.md, "Recovery").

Every transaction the terminal synced is in the host's `transactions` table with the
terminal's own signed document and the status the host settled it with. The export is a
SignedEnvelope (host key) so the terminal accepts it from a USB stick as readily as from
the broker.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.db import HostDb
from device.net.envelope import seal

EXPORT_KIND = "ledger_export"


def ledger_export(db: HostDb, device_id: str, signing_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed export of every transaction `device_id` synced, oldest first."""
    rows = [
        (row["tx_id"], row["status"], row["result"], row["body"])
        for row in db.query(
            "SELECT tx_id, status, result, body FROM transactions WHERE device_id = ?"
            " ORDER BY received_at",
            [device_id],
        )
    ]
    body = {
        "kind": EXPORT_KIND,
        "device_id": device_id,
        "exported_at": time.time(),
        "rows": [
            {"tx_id": tx_id, "status": status, "result": result, "tx": json.loads(tx)}
            for tx_id, status, result, tx in rows
        ],
    }
    return seal(signing_key, body)
