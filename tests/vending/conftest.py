"""Fixtures: the pure MDB cashless device driven in-process by a VMC (Loopback)."""

from __future__ import annotations

import pytest

from device.vending.mdb.cashless import CashlessDevice
from device.vending.mdb.config import ReaderSetup
from device.vending.mdb.loopback import Loopback


@pytest.fixture
def bus() -> Loopback:
    return Loopback(CashlessDevice(ReaderSetup(max_price=5000)))


@pytest.fixture
def bus2() -> Loopback:
    """A level 2 reader."""
    return Loopback(CashlessDevice(ReaderSetup(feature_level=2, max_price=5000)))
