"""Payload validation against the message schemas of docs/asyncapi.yaml (the one source).

The spec is one file, device/net/asyncapi.yaml, shipped as package data (docs/asyncapi.yaml
is a relative link to it), so the terminal and the host validate with exactly the schemas
the contract documents, in an editable or a normal install.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPEC_URI = "urn:blinkpay:asyncapi"
# components/schemas/Id: device, shard and host ids. The config models use it as a pydantic
# pattern; tests/net/test_ids.py checks it is the spec's. Topic levels are made of ids, so
# `/`, `+`, `#` and anything longer than 64 characters never reach a topic.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ID_RULE = "1 to 64 letters, digits, - and _, starting with a letter or digit"


class PayloadRejected(Exception):
    """An inbound payload refused before any handler saw it; `reason` is a counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@cache
def load_spec() -> dict[str, Any]:
    text = resources.files("device.net").joinpath("asyncapi.yaml").read_text(encoding="utf-8")
    # libyaml's loader when PyYAML has it: the same document, several times faster.
    spec = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(spec, dict) or spec.get("asyncapi") != "3.0.0":
        raise RuntimeError("device/net/asyncapi.yaml is not an AsyncAPI 3.0.0 document")
    return spec


@cache
def _registry() -> Registry:
    resource = Resource(contents=load_spec(), specification=DRAFT7)
    return Registry().with_resource(SPEC_URI, resource)


@cache
def _id_regex() -> re.Pattern[str]:
    return re.compile(load_spec()["components"]["schemas"]["Id"]["pattern"])


def valid_id(value: object) -> bool:
    """Whether `value` is an id of the contract (a device id, a shard id)."""
    return isinstance(value, str) and _id_regex().fullmatch(value) is not None


def check_id(value: object, what: str = "id") -> str:
    """`value` when it is an id of the contract, else ValueError naming `what` and the rule:
    the one check every CLI and API applies to a device or shard id where it enters."""
    if not valid_id(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ValueError(f"{what} {shown} is not valid: {ID_RULE}")
    return str(value)


def message_names() -> list[str]:
    return sorted(load_spec()["components"]["messages"])


def _inlined(ref: str) -> Draft7Validator:
    """The schema at `ref` with its local $refs replaced by what they point to: the same
    Draft 7 checks (a $ref has no siblings in the contract) about four times faster than
    resolving references on every message. A recursive schema keeps its references."""
    spec = load_spec()

    def resolve(node: Any, trail: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            target = node.get("$ref")
            if isinstance(target, str) and len(node) == 1 and target.startswith("#/"):
                if target in trail:
                    raise RecursionError(target)
                found: Any = spec
                for part in target[2:].split("/"):
                    found = found[part]
                return resolve(found, (*trail, target))
            return {key: resolve(value, trail) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value, trail) for value in node]
        return node

    try:
        return Draft7Validator(resolve({"$ref": ref}, ()))
    except RecursionError:
        return Draft7Validator({"$ref": f"{SPEC_URI}{ref}"}, registry=_registry())


@cache
def validator(message: str) -> Draft7Validator:
    """The JSON Schema validator of a message's payload (components/messages/<message>)."""
    payload = load_spec()["components"]["messages"][message]["payload"]
    return _inlined(payload["$ref"])


@cache
def schema_validator(schema: str) -> Draft7Validator:
    """Validator for a named component schema (e.g. the reassembled ShardSnapshot)."""
    return _inlined(f"#/components/schemas/{schema}")


def check(message: str, payload: Any) -> None:
    """Raise PayloadRejected('schema') when `payload` does not match the message schema."""
    _check_with(validator(message), payload)


def check_schema(schema: str, payload: Any) -> None:
    _check_with(schema_validator(schema), payload)


def _check_with(checker: Draft7Validator, payload: Any) -> None:
    error = next(iter(checker.iter_errors(payload)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise PayloadRejected("schema", f"{where}: {error.message[:200]}")


MAX_DEPTH = 32  # the deepest contract message nests 6 levels; anything far deeper is hostile


def _no_constant(name: str) -> Any:
    # NaN, Infinity and -Infinity are not JSON; Python's parser takes them by default and a
    # NaN timestamp would then compare false to every age limit.
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf
        raise ValueError(f"{text[:20]} is out of range for a number")
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a recursive walk would itself overflow on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


def parse(message: str, raw: bytes, max_bytes: int) -> dict[str, Any]:
    """Size check, UTF-8 JSON object, schema: the gate every inbound payload passes."""
    if len(raw) > max_bytes:
        raise PayloadRejected("oversize", f"{len(raw)} bytes > {max_bytes}")
    try:
        payload = json.loads(
            raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError also covers a 100k-digit integer (int max_str_digits) and NaN/Infinity
        raise PayloadRejected("malformed", str(exc)[:200]) from None
    if not isinstance(payload, dict):
        raise PayloadRejected("malformed", "not a JSON object")
    if _depth(payload) > MAX_DEPTH:
        raise PayloadRejected("malformed", f"nested deeper than {MAX_DEPTH} levels")
    check(message, payload)
    return payload


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
