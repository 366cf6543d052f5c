"""`blinkpay selftest` tells a refused port, an unknown host name and a broker certificate
that does not verify apart (device/net/probe.py), against real sockets and a real TLS
mosquitto."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.net.config import MqttConfig
from device.net.probe import diagnose
from tests.conftest import free_port, start_broker
from tests.net.conftest import Pki, _make_pki


def test_a_refused_port_and_an_unknown_host_name_are_told_apart() -> None:
    port = free_port()  # nothing listens on it
    refused = diagnose(MqttConfig(url=f"mqtt://127.0.0.1:{port}"))
    assert refused.startswith(f"127.0.0.1:{port} refused the connection: no broker listens")
    unknown = diagnose(MqttConfig(url="mqtt://no-such-broker.invalid:1883"))
    assert unknown.startswith("unknown host name 'no-such-broker.invalid'")


@pytest.mark.mqtt
def test_a_broker_certificate_from_another_ca_is_named(
    tmp_path: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = _make_pki(tmp_path_factory.mktemp("other-ca"))  # not the CA of the broker
    broker = start_broker(tmp_path / "tls", pki.broker_conf())
    try:
        url = f"mqtts://{broker.host}:{broker.port}"
        wrong_ca = MqttConfig(url=url, ca_file=other.ca, cert_file=pki.client_cert,
                              key_file=pki.client_key)  # fmt: skip
        said = diagnose(wrong_ca)
        assert said.startswith(f"the broker's certificate does not verify with {other.ca}")
        right = MqttConfig(url=url, ca_file=pki.ca, cert_file=pki.client_cert,
                           key_file=pki.client_key)  # fmt: skip
        assert "speaks TLS with these files" in diagnose(right)
        stranger = MqttConfig(url=url, ca_file=pki.ca, cert_file=other.client_cert,
                              key_file=other.client_key)  # fmt: skip
        assert diagnose(stranger).startswith(f"TLS with {broker.host}:{broker.port} ")
    finally:
        broker.stop()
