"""`blinkpay db recover`: a terminal whose ledger was lost (it refuses to start, exit 3)
gets it back from the host's signed copy (`blinkpay-host ledger export ID --out FILE`).

Run it with the service stopped, as the service user. It refuses while the ledger is whole.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from device.cli._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError

HELP = "restore a lost ledger from the host's signed copy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--from-host-export",
        type=Path,
        required=True,
        metavar="FILE",
        help="the file `blinkpay-host ledger export DEVICE_ID --out FILE` wrote",
    )


def _export_rows(config: Any, path: Path) -> list[dict[str, Any]]:
    from device.crypto.signing import load_public_key
    from device.net.envelope import open_envelope
    from device.net.schemas import PayloadRejected

    key_file = config.mqtt.backend_public_key_file
    if key_file is None:
        raise BlinkpayError("mqtt.backend_public_key_file is not set: the export cannot be checked")
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
        body = open_envelope(load_public_key(key_file), envelope)
    except (ValueError, KeyError, TypeError, PayloadRejected) as exc:
        raise BlinkpayError(f"{path}: not a ledger export signed by this host ({exc})") from None
    if body.get("kind") != "ledger_export" or body.get("device_id") != config.device.id:
        raise BlinkpayError(f"{path}: an export for {body.get('device_id')!r}, not this terminal")
    rows = body.get("rows")
    if not isinstance(rows, list):
        raise BlinkpayError(f"{path}: the export has no rows")
    return rows


def run(args: argparse.Namespace) -> int:
    from device.store.db import DatabaseError
    from device.store.ledger_chain import LedgerIntegrityError
    from device.store.recovery import move_aside, restore_rows
    from device.store.terminal_store import (
        check_at_start,
        db_path,
        ledger_anchor_path,
        open_store,
    )

    config = config_from_args(args)
    rows = _export_rows(config, args.from_host_export)
    settings, data_dir = config.store, config.device.data_dir
    try:
        store = open_store(settings, data_dir)
        try:
            check_at_start(store)
        finally:
            store.close()
    except (LedgerIntegrityError, DatabaseError) as exc:
        damage = str(exc)
    else:
        raise BlinkpayError("the ledger is whole: there is nothing to recover")
    database = db_path(settings, data_dir)
    wal, shm = (database.with_name(database.name + suffix) for suffix in ("-wal", "-shm"))
    moved = move_aside([database, wal, shm, ledger_anchor_path(data_dir)])
    store = open_store(settings, data_dir)
    try:
        restored = restore_rows(store.ledger, rows)
        head = check_at_start(store)
    finally:
        store.close()
    print_json(
        {
            "damage": damage,
            "moved_aside": [str(p) for p in moved],
            "restored": restored,
            "ledger_rows": head.rows,
            "note": "rows this terminal had not synced before the loss are not in the host's "
            "copy; the host's holds for them expire into refunds",
        }
    )
    return 0
