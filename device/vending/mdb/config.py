"""The reader's identity and limits as the MDB cashless device reports them."""

from __future__ import annotations

from dataclasses import dataclass

from device.vending.mdb.frames import CASHLESS_1


@dataclass(frozen=True)
class ReaderSetup:
    """What SETUP CONFIG DATA's answer and EXPANSION REQUEST ID's answer carry
    (Section 7.4.2 and 7.4.19), plus the terminal's own per-transaction limit.

    Money on the bus is `scaled`: value x scale_factor x 10^-decimal_places of the
    currency unit; minor units here are 10^-decimal_places, so minor = scaled x scale_factor.
    """

    address: int = CASHLESS_1
    feature_level: int = 1  # 1, or 2 (CMD OUT OF SEQUENCE, revalue refused, long BEGIN SESSION)
    currency_code: int = 0x1978  # "1" + ISO 4217 numeric in BCD: 978 = EUR
    scale_factor: int = 1
    decimal_places: int = 2
    max_response_time_s: int = 30  # how long the VMC waits for VEND APPROVED/DENIED
    misc_options: int = 0x00
    max_price: int = 10_000  # minor units; a VEND REQUEST above it is denied
    manufacturer: str = "BLP"
    serial: str = "000000000001"
    model: str = "blinkpay"
    software_version: int = 0x0100  # BCD 01.00
    block_gap_s: float = 0.05  # a half-received block older than this is dropped

    def to_scaled(self, minor: int) -> int:
        return minor // self.scale_factor

    def to_minor(self, scaled: int) -> int:
        return scaled * self.scale_factor

    def identity(self) -> list[int]:
        """PERIPHERAL ID Z2-Z30: manufacturer (3), serial (12), model (12) in ASCII,
        software version (2, BCD)."""
        text = (
            self.manufacturer.ljust(3)[:3] + self.serial.rjust(12)[:12] + self.model.ljust(12)[:12]
        )
        return [
            *text.encode("ascii", "replace"),
            self.software_version >> 8 & 0xFF,
            self.software_version & 0xFF,
        ]
