"""docs/asyncapi.yaml is valid AsyncAPI 3.0, covers DESIGN.md's topics, and its examples
match their schemas; the runtime validator reads the same file."""

from __future__ import annotations

import os
import tomllib
import warnings
from pathlib import Path

import pytest
import yaml

from device.net import schemas
from device.paths import REPO_ROOT

SPEC = REPO_ROOT / "docs" / "asyncapi.yaml"


def test_spec_is_valid_asyncapi_3() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asyncapi3 = pytest.importorskip("asyncapi3")
    document = yaml.safe_load(SPEC.read_text())
    model = asyncapi3.AsyncAPI3.model_validate(document)
    assert model.asyncapi == "3.0.0"
    operation = next(iter(document["operations"]))
    broken_documents = [
        dict(document, channels={**document["channels"], "status": {"adress": "x"}}),
        dict(document, asyncapi="2.6.0"),
        dict(document, info={"version": "1.0.0"}),  # no title
        dict(
            document,
            operations={**document["operations"], operation: {"action": "shout"}},
        ),
    ]
    for broken in broken_documents:  # the validator is not a rubber stamp
        with pytest.raises(ValueError):
            asyncapi3.AsyncAPI3.model_validate(broken)


def test_operations_name_channels_and_their_own_messages() -> None:
    """AsyncAPI 3.0: an operation's messages must be messages of its channel."""
    document = schemas.load_spec()
    for name, operation in document["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        channel = _resolve(document, channel_ref)
        assert channel.get("messages"), f"{name}: channel without messages"
        for message in operation.get("messages", []):
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
            _resolve(document, message["$ref"])


def test_one_contract_file_so_docs_and_runtime_cannot_drift() -> None:
    """The package carries the file (wheels copy it as package data); docs/ links to it."""
    shipped = Path(schemas.__file__).with_name("asyncapi.yaml")
    assert shipped.is_file() and not shipped.is_symlink()
    assert SPEC.is_symlink()
    assert not Path(os.readlink(SPEC)).is_absolute()  # survives a clone anywhere
    assert SPEC.resolve() == shipped.resolve()
    assert schemas.load_spec() == yaml.safe_load(SPEC.read_text())
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["*"]


def _resolve(document: dict, ref: str) -> dict:
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_resolves_and_every_message_has_examples() -> None:
    document = schemas.load_spec()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                _resolve(document, node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    for name, message in document["components"]["messages"].items():
        assert message.get("examples"), f"{name} has no example"


def test_every_example_validates() -> None:
    count = 0
    for name, message in schemas.load_spec()["components"]["messages"].items():
        for example in message["examples"]:
            schemas.check(name, example["payload"])
            count += 1
    assert count >= 20


@pytest.mark.parametrize(
    "address",
    [
        "blinkpay/v1/dev/{device_id}/status",
        "blinkpay/v1/dev/{device_id}/telemetry",
        "blinkpay/v1/dev/{device_id}/events",
        "blinkpay/v1/dev/{device_id}/tx",
        "blinkpay/v1/dev/{device_id}/tx/ack",
        "blinkpay/v1/dev/{device_id}/auth/req",
        "blinkpay/v1/dev/{device_id}/auth/resp",
        "blinkpay/v1/dev/{device_id}/cmd/{name}",
        "blinkpay/v1/dev/{device_id}/cmd/{name}/result",
        "blinkpay/v1/dev/{device_id}/config/set",
        "blinkpay/v1/dev/{device_id}/config/state",
        "blinkpay/v1/dev/{device_id}/shard/req",
        "blinkpay/v1/dev/{device_id}/shard/ack",
        "blinkpay/v1/shard/{shard_id}/snapshot",
        "blinkpay/v1/shard/{shard_id}/delta",
        "blinkpay/v1/dev/{device_id}/register/req",
        "blinkpay/v1/dev/{device_id}/register/resp",
    ],
)
def test_design_topics_are_documented(address: str) -> None:
    addresses = {c["address"] for c in schemas.load_spec()["channels"].values()}
    assert address in addresses


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b'{"v": 1, "tx_id": "nope", "result": "recorded"}', "schema"),
        (b'{"v": 1}' + b" " * 5000, "oversize"),
    ],
)
def test_parse_refuses_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(schemas.PayloadRejected) as refused:
        schemas.parse("TxAck", raw, max_bytes=4096)
    assert refused.value.reason == reason


def test_event_schema_is_closed_against_biometrics() -> None:
    event = {"v": 1, "device_id": "d1", "boot_id": "0" * 32, "seq": 1, "ts": 1.0, "type": "x"}
    schemas.check("Event", event)
    with pytest.raises(schemas.PayloadRejected):
        schemas.check("Event", {**event, "embedding": [0.1, 0.2]})
