"""Vending self-test: which transport carries the MDB bus, whether its port opens, and
whether the vending machine's controller is heard on it.

Nothing is sold: the reader is opened and listens; a VMC that is running sets a freshly
started reader up (RESET, SETUP, READER ENABLE), which is what "heard" means here. Used by
`blinkpay selftest` and `blinkpay gpio-test` (docs/vending.md, hardware/mdb.md).
"""

from __future__ import annotations

from device.clock import Clock
from device.config import Config
from device.selftest.check import Check
from device.vending.config import VendingConfig
from device.vending.factory import open_controller
from device.vending.port import VendingController

LISTEN_S = 2.0  # a VMC polls every few ms to a few hundred; it sets a new reader up at once


def describe(config: VendingConfig) -> str:
    """The transport in one line, as a field engineer checks it against the wiring."""
    if config.controller == "sim":
        return "sim: in-process simulated vending machine (no bus)"
    where = f"{config.controller} on {config.port} at {config.effective_baud} baud"
    if config.controller == "mdb-hat":
        return f"{where}: Qibixx MDB Pi HAT, cashless slave (its firmware answers the bus)"
    tuning = []
    if config.cpu is not None:
        tuning.append(f"bus thread on cpu {config.cpu}")
    if config.realtime_priority is not None:
        tuning.append(f"SCHED_FIFO {config.realtime_priority}")
    extra = f", {', '.join(tuning)}" if tuning else ", default scheduling (5 ms not assured)"
    return (
        f"{where}, {config.framing} framing, cashless address {config.address:02X}H, "
        f"level {config.feature_level}{extra}"
    )


def vending_checks(
    config: Config, sim: bool, clock: Clock, listen_s: float = LISTEN_S
) -> list[Check]:
    """vending.controller (the port opens) and vending.machine (the VMC is heard)."""
    if config.device.mode != "vending":
        return [Check("vending.controller", True, "turnstile mode: no vending machine")]
    section = config.vending
    transport = describe(section)
    controller = open_controller(section, clock)
    try:
        controller.start()
    except Exception as exc:  # no such port, no permission, HAT not answering
        return [Check("vending.controller", False, f"{transport}: {type(exc).__name__}: {exc}")]
    try:
        heard = _listen(controller, clock, listen_s)
        anomalies = {k: v for k, v in controller.stats().items() if v}
    finally:
        controller.close()
    checks = [Check("vending.controller", True, f"{transport}: port open")]
    if section.controller == "sim":
        return checks
    detail = (
        f"VMC heard: {', '.join(heard)}"
        if heard
        else f"no VMC heard in {listen_s:g} s (machine off, harness unplugged, reader "
        "not configured in the VMC?)"
    )
    if anomalies:
        detail += f"; counted: {anomalies}"
    checks.append(Check("vending.machine", bool(heard), detail))
    return checks


def _listen(controller: VendingController, clock: Clock, listen_s: float) -> list[str]:
    """The names of the machine's events within `listen_s` (ReaderEnabled, ...)."""
    heard: list[str] = []
    deadline = clock.monotonic() + listen_s
    while clock.monotonic() < deadline and "ReaderEnabled" not in heard:
        heard += [type(e).__name__ for e in controller.events()]
        clock.sleep(0.05)
    return list(dict.fromkeys(heard))
