"""The terminal's network side as a process of its own (`python -m device.net`): the MQTT
link, ledger sync, shard sync, telemetry and remote control over the configured store, with
no camera or keypad. For broker and fleet checks on a site, and for tests that must kill
a real device process; `blinkpay run` starts the same NetService inside the full terminal.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from device import __version__
from device.commands._common import add_config_argument, config_from_args
from device.config import Config
from device.errors import BlinkpayError
from device.logs import setup_logging
from device.net.service import NetService
from device.net.shard_sync import TemplateShardPort
from device.store.store import Store, open_store

log = logging.getLogger("blinkpay.net")


def start_net_service(config: Config, store: Store, *, software: str = "") -> NetService:
    """A started NetService over `store` (the one way the terminal's network side starts)."""
    net = NetService(
        config,
        ledger=store.ledger,
        shard_store=TemplateShardPort(store.shard),
        software=software or f"blinkpay {__version__}",
        state_dir=Path(config.device.data_dir),
    )
    net.start()
    return net


def serve(config: Config, stop: threading.Event, *, connect_wait_s: float = 0.0) -> int:
    """Run until `stop` is set; the store must be provisioned (`blinkpay provision`)."""
    if not config.mqtt.enabled:
        raise BlinkpayError("mqtt.enabled is false: there is no network side to run")
    store = open_store(config, shard_id=config.mqtt.shard_id)
    try:
        net = start_net_service(config, store)
        try:
            if connect_wait_s and not net.link.wait_connected(connect_wait_s):
                log.warning("not connected to %s yet; retrying in the background", net.link.host)
            stop.wait()
        finally:
            net.stop()
    finally:
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m device.net", description="run the terminal's MQTT side alone"
    )
    add_config_argument(parser)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        config = config_from_args(args)
        setup_logging(config.device.log_level, config.device.log_format)
        return serve(config, stop)
    except BlinkpayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
