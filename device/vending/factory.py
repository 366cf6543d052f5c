"""The vending controller the [vending] section names."""

from __future__ import annotations

from device.clock import Clock
from device.vending.config import VendingConfig
from device.vending.port import VendingController


def open_controller(config: VendingConfig, clock: Clock | None = None) -> VendingController:
    """Built, not started: the caller start()s it once it is ready for events."""
    setup = config.reader_setup()
    if config.controller == "sim":
        from device.vending.sim import SimVendingController

        return SimVendingController(setup, clock)
    if config.controller == "mdb-hat":
        from device.vending.hat import MdbHatController

        return MdbHatController(
            config.port, config.effective_baud, config.decimal_places, config.max_price, clock
        )
    from device.vending.ninebit import NineBitSerial
    from device.vending.uart import MdbUartController

    port, baud, framing = config.port, config.effective_baud, config.framing
    return MdbUartController(
        lambda: NineBitSerial.open(port, baud, framing),
        setup,
        clock,
        cpu=config.cpu,
        realtime_priority=config.realtime_priority,
    )
