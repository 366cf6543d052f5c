"""The shipped Prometheus alerting rules are well formed and only use metrics /metrics has."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

METRICS_SOURCE = Path(__file__).resolve().parents[2] / "backend" / "console" / "metrics.py"


def test_rules_parse_and_name_real_metrics() -> None:
    text = resources.files("backend.console").joinpath("alert_rules.yml").read_text()
    rules = yaml.safe_load(text)["groups"][0]["rules"]
    exported = set(re.findall(r'"(blinkpay_[a-z_]+)"', METRICS_SOURCE.read_text()))
    assert {"blinkpay_terminal_health", "blinkpay_console_broker_up"} <= exported
    for rule in rules:
        assert rule["alert"].startswith("Blinkpay") and rule["for"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        for name in re.findall(r"blinkpay_[a-z_]+", rule["expr"]):
            assert name in exported, f"{rule['alert']} uses {name}, which /metrics lacks"
    kinds = {m for r in rules for m in re.findall(r'health="(\w+)"', r["expr"])}
    assert kinds == {"fault", "out_of_service", "offline", "stale", "degraded"}
