"""The [vending] section model and the controller it opens."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from device.vending.config import VendingConfig
from device.vending.factory import open_controller
from device.vending.hat import MdbHatController
from device.vending.sim import SimVendingController
from device.vending.uart import MdbUartController


def test_defaults_are_the_simulated_controller() -> None:
    config = VendingConfig()
    assert config.controller == "sim" and config.effective_baud == 9600
    assert isinstance(open_controller(config), SimVendingController)


def test_each_controller_is_built_without_opening_its_port() -> None:
    hat = open_controller(VendingConfig(controller="mdb-hat", port="/dev/null-hat"))
    assert isinstance(hat, MdbHatController) and hat.baud == 115_200
    uart = open_controller(VendingConfig(controller="mdb-uart", port="/dev/null-uart"))
    assert isinstance(uart, MdbUartController)


def test_reader_setup_follows_the_section() -> None:
    setup = VendingConfig(scale_factor=5, decimal_places=2, max_price=20_000).reader_setup()
    assert (setup.scale_factor, setup.to_scaled(20_000), setup.to_minor(3)) == (5, 4000, 15)


@pytest.mark.parametrize(
    "fields",
    [
        {"controller": "serial"},
        {"max_price": 70_000},  # 70000 / 1 does not fit 16 bits
        {"scale_factor": 0},
        {"address": 0x20},
        {"controller": "mdb-hat", "address": 0x60},
        {"unknown": 1},
    ],
)
def test_bad_sections_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VendingConfig(**fields)


def test_the_host_must_answer_before_the_reader_gives_up() -> None:
    from device.config import ConfigError, config_from_mapping

    vending = {"device": {"mode": "vending"}, "vending": {"max_response_time_s": 3}}
    with pytest.raises(ConfigError, match="auth_timeout_s"):
        config_from_mapping({**vending, "mqtt": {"auth_timeout_s": 2.5}})
    assert config_from_mapping({**vending, "mqtt": {"auth_timeout_s": 1.5}}).vending
    # a turnstile has no reader to race
    assert config_from_mapping({"vending": {"max_response_time_s": 1}})
