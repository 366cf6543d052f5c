"""Wiring (the `device.app` room): the terminal's parts from the config (parts.py), its
network side (network.py), and the threads around the main loop with a clean stop
(runtime.py). What the CLI, the demo and the tests use is importable from here.
"""

from device.app.network import (
    model_versions,
    prune_ledger,
    start_net,
    start_net_service,
    telemetry_observer,
)
from device.app.parts import Parts, load_pin_key, open_parts
from device.app.runtime import VisionWorker, run

__all__ = [
    "Parts",
    "VisionWorker",
    "load_pin_key",
    "model_versions",
    "open_parts",
    "prune_ledger",
    "run",
    "start_net",
    "start_net_service",
    "telemetry_observer",
]
