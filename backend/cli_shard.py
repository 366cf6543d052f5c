"""`blinkpay-host shard ...`: a shard's embedder, its migration to another one, the
coverage of the new templates and the switch (docs/host.md, docs/matching.md). Each
change is written to the console's audit log (operator "cli") and published as a
snapshot, which tells every terminal of the shard."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from backend.cli_common import connected_host, finish
from backend.config import HostConfig
from device.errors import BlinkpayError


def add_parser(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    shard = command(sub, "shard", "a shard's embedder: migrate, coverage, switch", config=False)
    actions = shard.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = command(actions, "status", "the shard's embedder, migration and coverage")
    migrate = command(
        actions, "migrate", "start collecting templates of another embedder (from payments)"
    )
    migrate.add_argument("--to", required=True, help="the new embedder's version")
    migrate.add_argument("--dim", type=int, required=True, help="its template length")
    cancel = command(actions, "cancel", "stop a migration; its templates are deleted")
    switch = command(
        actions, "switch", "make the new embedder the shard's (customers without one re-enrol)"
    )
    switch.add_argument(
        "--min-coverage",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="refuse when fewer than this fraction of customers have a new template (0..1)",
    )
    for each in (status, migrate, cancel, switch):
        each.add_argument("--shard", default=None, help="shard id (default: mqtt.shard_id)")


def run(config: HostConfig, args: argparse.Namespace) -> dict[str, Any]:
    from backend.console.store import ConsoleStore

    shard_id = args.shard or config.mqtt.shard_id
    host = connected_host(config)
    try:
        migrations = host.migrations
        if args.action == "status":
            result: dict[str, Any] = migrations.coverage(shard_id)
            return {**result, **finish(host)}
        if args.action == "migrate":
            state = migrations.start(shard_id, args.to, args.dim)
            result = {"shard_id": shard_id, "migrating_to": state.migrating_to}
            detail: dict[str, Any] = {"to": args.to, "dim": args.dim}
        elif args.action == "cancel":
            migrations.cancel(shard_id)
            result, detail = {"shard_id": shard_id, "migrating_to": None}, {}
        else:
            if not 0.0 <= args.min_coverage <= 1.0:
                raise BlinkpayError("--min-coverage is a fraction from 0 to 1")
            switched = migrations.switch(shard_id, args.min_coverage)
            result = {
                "shard_id": shard_id,
                "embedder_version": switched["switched_to"],
                "covered": switched["covered"],
                "customers": switched["customers"],
                "needs_enrolment": switched["needs_enrolment"],
            }
            detail = {k: result[k] for k in ("embedder_version", "covered", "customers")}
        ConsoleStore(host.db).audit(None, f"shard_{args.action}", shard_id, "cli", **detail)
        if config.mqtt.enabled:
            result["snapshot_version"] = host.publish_snapshot(shard_id)
    except BaseException:
        finish(host)
        raise
    return {**result, **finish(host)}
