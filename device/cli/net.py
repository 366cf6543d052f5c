"""`blinkpay net`: the terminal's network side as a process of its own: the MQTT
link, ledger sync, shard sync, telemetry and remote control over the configured store, with
no camera or keypad. For broker and fleet checks on a site, and for tests that must kill
a real device process; `blinkpay run` starts the same NetService inside the full terminal
(both through device.app.start_net_service).
"""

from __future__ import annotations

import argparse
import logging
import threading

from device.cli._common import add_config_argument, config_from_args
from device.config import Config
from device.errors import BlinkpayError
from device.logs import setup_logging
from device.signals import event_setter, stop_on_signals
from device.store.terminal_store import open_store

log = logging.getLogger("blinkpay.net")


def serve(config: Config, stop: threading.Event, *, connect_wait_s: float = 0.0) -> int:
    """Run until `stop` is set; the store must be provisioned (`blinkpay provision`)."""
    if not config.mqtt.enabled:
        raise BlinkpayError("mqtt.enabled is false: there is no network side to run")
    store = open_store(config.store, config.device.data_dir, shard_id=config.mqtt.shard_id)
    try:
        from device.app import start_net_service  # imports paho only when it runs

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


HELP = "run the terminal's MQTT side alone (no camera, no keypad)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    config = config_from_args(args)
    setup_logging(config.device.log_level, config.device.log_format)
    with stop_on_signals(event_setter(stop)):
        return serve(config, stop)
