"""The host's tests reuse the MQTT area's fixtures (keys, terminals, mosquitto check)."""

from tests.net.conftest import _need_mosquitto, backend_keys  # noqa: F401
