"""Every event schema in Customer.io's reporting-webhooks OpenAPI parses.

For each ``object_type``/``metric`` schema, a minimal payload is built from the schema's required
fields (once per source variant: broadcast, campaign, newsletter, transactional), checked against
the schema with jsonschema so the builder cannot drift, and then parsed.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from opencdp.webhooks import METRICS, parse_event
from support.shared import SPEC, require

SPEC_PATH = require(SPEC / "reporting-webhooks.openapi.json", module=True)
URI = "urn:customerio:reporting-webhooks"


@cache
def _doc() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _schemas() -> dict[str, Any]:
    return _doc()["components"]["schemas"]  # type: ignore[no-any-return]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _schemas()[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _collect(node: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[list[Any]]]:
    """Properties, required names and oneOf alternatives of a schema, through allOf."""
    node = _resolve(node)
    props: dict[str, Any] = {}
    required: list[str] = []
    alternatives: list[list[Any]] = []
    for part in node.get("allOf", []):
        p, r, a = _collect(part)
        for name, sub in p.items():
            props[name] = {"allOf": [props[name], sub]} if name in props else sub
        required += r
        alternatives += a
    for name, sub in node.get("properties", {}).items():
        props[name] = {"allOf": [props[name], sub]} if name in props else sub
    required += node.get("required", [])
    if "oneOf" in node:
        alternatives.append(node["oneOf"])
    return props, required, alternatives


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merge(out[key], value) if key in out else value
        return out
    return b


def minimal(node: dict[str, Any], variant: int = 0) -> Any:
    """The smallest instance of ``node``: required properties only, first enum value."""
    node = _resolve(node)
    props, required, alternatives = _collect(node)
    if "enum" in node:
        return node["enum"][0]
    if "const" in node:
        return node["const"]
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    objects = bool(alternatives) and kind is None and not _scalar_alts(alternatives)
    if kind == "object" or props or required or objects:
        out: Any = {name: minimal(props.get(name, {}), variant) for name in dict.fromkeys(required)}
        for options in alternatives:
            out = _merge(out, minimal(options[variant % len(options)], variant))
        return out
    if alternatives:
        return minimal(alternatives[0][0], variant)
    example = node.get("example")
    if kind == "integer":
        return example if isinstance(example, int) else 1
    if kind == "number":
        return example if isinstance(example, (int, float)) else 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        items = node.get("items", {})
        return [minimal(items, variant) for _ in range(node.get("minItems", 1))]
    if kind == "null":
        return None
    return example if isinstance(example, str) else "x"


def _scalar_alts(alternatives: list[list[Any]]) -> bool:
    options = [option for group in alternatives for option in group]
    return all(_resolve(option).get("type") not in ("object", None) for option in options)


def _leaf_schemas() -> list[str]:
    body = _doc()["webhooks"]["reportingWebhook"]["post"]["requestBody"]
    groups = body["content"]["application/json"]["schema"]["oneOf"]
    leaves = []
    for group in groups:
        for option in _resolve(group)["oneOf"]:
            leaves.append(option["$ref"].rsplit("/", 1)[-1])
    return leaves


def _validator(name: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        URI, Resource.from_contents(_doc(), default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"{URI}#/components/schemas/{name}"}, registry=registry)


LEAVES = _leaf_schemas()


def test_every_event_schema_is_covered() -> None:
    assert len(LEAVES) == 69  # 3 customer + 13 email + 11 push + 8 in_app + 10 sms + 6 + 6 + 12
    assert len(set(LEAVES)) == len(LEAVES)


@pytest.mark.parametrize("variant", range(4))
@pytest.mark.parametrize("name", LEAVES)
def test_minimal_payload_parses(name: str, variant: int) -> None:
    instance = minimal(_schemas()[name], variant)
    errors = sorted(_validator(name).iter_errors(instance), key=str)
    assert not errors, f"builder produced an invalid {name}: {errors[0].message}"

    event = parse_event(orjson.dumps(instance))
    assert event.event_id == instance["event_id"]
    assert event.metric == instance["metric"]
    assert event.object_type == instance.get("object_type", "customer")
    assert event.timestamp == instance["timestamp"]
    assert event.data == instance["data"]
    assert event.metric in METRICS[event.object_type], "METRICS misses a documented metric"
    ids = instance["data"].get("identifiers")
    if ids is not None:
        assert event.identifiers.id == ids["id"]
    if name.startswith("person_"):
        assert event.name == f"customer_{event.metric.removeprefix('cio_')}"
    elif name != "push_drafted":  # the source's push_drafted schema says metric "attempted"
        assert event.name == name


@pytest.mark.parametrize(
    "example",
    _doc()["webhooks"]["reportingWebhook"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ].values(),
    ids=lambda e: e["summary"],
)
def test_published_examples_parse(example: dict[str, Any]) -> None:
    value = example["value"]
    event = parse_event(orjson.dumps(value))
    assert (event.object_type, event.metric) == (value["object_type"], value["metric"])
    assert event.identifiers.cio_id == value["data"]["identifiers"]["cio_id"]
    assert event.person_id == "42"
