"""The [vending] section: which vending controller, its port, and what the reader reports.

`controller`: "sim" (in-process, scripted: demo and tests), "mdb-hat" (a Qibixx MDB Pi HAT
in cashless-slave mode, which runs the bus in its own firmware) or "mdb-uart" (a raw
9-bit UART through an MDB level shifter; this code answers the bus itself).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.frames import CASHLESS_1, CASHLESS_2


class VendingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    controller: Literal["sim", "mdb-hat", "mdb-uart"] = "sim"
    port: str = "/dev/serial0"
    # MDB itself runs at 9600 baud (Section 2.1); the HAT's host link at 115200.
    baud: int | None = Field(default=None, ge=1200, le=3_000_000)
    # mdb-uart only: "parity" on a real UART, "stuffed" on a pty (the simulator)
    framing: Literal["parity", "stuffed"] = "parity"
    address: Literal[0x10, 0x60] = CASHLESS_1  # cashless device #1 or #2
    feature_level: int = Field(default=1, ge=1, le=2)
    currency_code: int = Field(default=0x1978, ge=0, le=0xFFFF)  # 1 + ISO 4217 in BCD
    max_price: int = Field(default=10_000, ge=1)  # minor units; above: VEND DENIED
    scale_factor: int = Field(default=1, ge=1, le=255)
    decimal_places: int = Field(default=2, ge=0, le=4)
    max_response_time_s: int = Field(default=30, ge=1, le=255)
    misc_options: int = Field(default=0, ge=0, le=0xFF)
    # mdb-uart only: the bus thread's core (keep one free with isolcpus=3 on a Pi) and
    # SCHED_FIFO priority; None leaves the scheduler's defaults.
    cpu: int | None = Field(default=None, ge=0, le=255)
    realtime_priority: int | None = Field(default=None, ge=1, le=99)

    @model_validator(mode="after")
    def _scaled_max_fits(self) -> VendingConfig:
        if self.max_price // self.scale_factor > 0xFFFF:
            raise ValueError("max_price / scale_factor must fit MDB's 16-bit money (65535)")
        if self.address == CASHLESS_2 and self.controller == "mdb-hat":
            raise ValueError("the HAT's cashless slave is cashless device #1 (address 0x10)")
        return self

    @property
    def effective_baud(self) -> int:
        if self.baud is not None:
            return self.baud
        return 115_200 if self.controller == "mdb-hat" else 9600

    def reader_setup(self) -> ReaderSetup:
        return ReaderSetup(
            address=self.address,
            feature_level=self.feature_level,
            currency_code=self.currency_code,
            scale_factor=self.scale_factor,
            decimal_places=self.decimal_places,
            max_response_time_s=self.max_response_time_s,
            misc_options=self.misc_options,
            max_price=self.max_price,
        )
