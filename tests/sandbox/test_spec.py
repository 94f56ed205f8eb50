"""The Customer.io emulation against Customer.io's own OpenAPI document.

Valid examples are taken from the spec itself (each operation's JSON code samples, media-type
examples and schema examples, kept only when jsonschema says they match the request schema);
the sandbox must accept every one. Invalid examples are derived from the valid ones by
dropping one key, giving one declared property a value of the wrong JSON type, or putting a
value outside an enum, kept only when jsonschema says the result violates the schema; the
sandbox must refuse every one (400/413, or a 207 entry for a batch operation).

Two leniencies are deliberate and pinned by ``test_documented_leniencies``: integer person
ids (the spec's own examples use them) and attribute values of any JSON type (the official
clients send floats and nested objects, which Customer.io stores).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from support.openapi import SPEC_PATH, body_ref, spec, validator
from support.shared import require

require(SPEC_PATH, module=True)

WRONG_SCALAR: Any = ["wrong-type"]
WRONG_CONTAINER = "wrong-type"
WRONG_ENUM = "not-a-valid-value"


def resolve(schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        node: Any = spec()
        for part in schema["$ref"][2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


# --- the operations under test --------------------------------------------------------------
# key -> (method, path sent to the sandbox, JSON pointer of the request schema, API)
def _body_ref(path: str, method: str) -> str:
    return body_ref(path, method)


OPERATIONS: dict[str, tuple[str, str, str, str]] = {
    "identify": ("PUT", "/api/v1/customers/42", _body_ref("/api/v1/customers/{identifier}",
                                                           "put"), "track"),
    "event": ("POST", "/api/v1/customers/42/events",
              _body_ref("/api/v1/customers/{identifier}/events", "post"), "track"),
    "anonymous_event": ("POST", "/api/v1/events", _body_ref("/api/v1/events", "post"), "track"),
    "device": ("PUT", "/api/v1/customers/42/devices",
               _body_ref("/api/v1/customers/{identifier}/devices", "put"), "track"),
    "merge": ("POST", "/api/v1/merge_customers", _body_ref("/api/v1/merge_customers", "post"),
              "track"),
    "metrics": ("POST", "/api/v1/metrics", _body_ref("/api/v1/metrics", "post"), "track"),
    "push_events": ("POST", "/api/v1/push/events", _body_ref("/api/v1/push/events", "post"),
                    "track"),
    "segment_add": ("POST", "/api/v1/segments/7/add_customers",
                    _body_ref("/api/v1/segments/{segment_id}/add_customers", "post"), "track"),
    "unsubscribe": ("POST", "/unsubscribe/RPILAgUBcRhIBqSfeiIwdIYJKxTY",
                    _body_ref("/unsubscribe/{delivery_id}", "post"), "track"),
    "entity": ("POST", "/api/v2/entity", _body_ref("/api/v2/entity", "post"), "track"),
    "batch": ("POST", "/api/v2/batch", _body_ref("/api/v2/batch", "post"), "track"),
    "send_email": ("POST", "/v1/send/email", "#/components/schemas/sendemail", "app"),
    "send_push": ("POST", "/v1/send/push", "#/components/schemas/sendpush", "app"),
    "send_sms": ("POST", "/v1/send/sms", "#/components/schemas/sendsms", "app"),
}
SPEC_PATHS = {"identify": "/api/v1/customers/{identifier}",
              "event": "/api/v1/customers/{identifier}/events",
              "anonymous_event": "/api/v1/events",
              "device": "/api/v1/customers/{identifier}/devices",
              "merge": "/api/v1/merge_customers", "metrics": "/api/v1/metrics",
              "push_events": "/api/v1/push/events",
              "segment_add": "/api/v1/segments/{segment_id}/add_customers",
              "unsubscribe": "/unsubscribe/{delivery_id}", "entity": "/api/v2/entity",
              "batch": "/api/v2/batch"}


def _schema_examples(schema: Any, depth: int = 0) -> Iterator[Any]:
    schema = resolve(schema)
    if not isinstance(schema, dict) or depth > 4:
        return
    if "example" in schema:
        yield schema["example"]
    for key in ("oneOf", "anyOf", "allOf"):
        for branch in schema.get(key, []):
            yield from _schema_examples(branch, depth + 1)


def _repair(example: Any, check: Draft202012Validator, required: set[str]) -> Any:
    """Make a spec example that contradicts its own schema valid, minimally: drop an optional
    offending key, or turn an integer id into a string (the examples do both)."""
    for _ in range(5):
        errors = list(check.iter_errors(example))
        if not errors or not isinstance(example, dict):
            return example
        path = list(errors[0].absolute_path) or [
            e for err in errors for e in err.absolute_path][:1]
        if not path:
            return example
        top = path[0]
        if top not in required:
            example = {k: v for k, v in example.items() if k != top}
        elif isinstance(example[top], dict):
            example = {**example, top: {k: str(v) if isinstance(v, int) else v
                                        for k, v in example[top].items()}}
        else:
            return example
    return example


@cache
def examples(key: str) -> tuple[Any, ...]:
    """The spec's own examples of a request body that the spec's schema accepts."""
    _, _, ref, _ = OPERATIONS[key]
    found: list[Any] = []
    if key in SPEC_PATHS:
        method = OPERATIONS[key][0].lower()
        op = spec()["paths"][SPEC_PATHS[key]][method]
        for sample in op.get("x-codeSamples", []):
            if sample.get("lang", "").lower() == "json":
                found.append(json.loads(sample["source"]))
        media = op["requestBody"]["content"]["application/json"]
        if "example" in media:
            found.append(media["example"])
    found.extend(_schema_examples({"$ref": ref}))
    if key == "batch":  # every v2 operation example, alone in a batch
        found.extend({"batch": [op]} for op in examples("entity"))
    check = validator(ref)
    required = set(resolve({"$ref": ref}).get("required", []))
    for branch in resolve({"$ref": ref}).get("allOf", []):
        required |= set(resolve(branch).get("required", []))
    unique: list[Any] = []
    for raw in found:
        ex = _repair(raw, check, required)
        if isinstance(ex, dict) and ex not in unique and check.is_valid(ex):
            unique.append(ex)
    return tuple(unique)


# --- deriving invalid examples ---------------------------------------------------------------
def _props(schema: Any, depth: int = 0) -> dict[str, list[Any]]:
    """Declared property schemas by name, gathered through allOf/oneOf/anyOf."""
    schema = resolve(schema)
    out: dict[str, list[Any]] = {}
    if not isinstance(schema, dict) or depth > 5:
        return out
    for name, sub in schema.get("properties", {}).items():
        out.setdefault(name, []).append(resolve(sub))
    for key in ("oneOf", "anyOf", "allOf"):
        for branch in schema.get(key, []):
            for name, subs in _props(branch, depth + 1).items():
                out.setdefault(name, []).extend(subs)
    return out


def _types(subs: list[Any]) -> set[str]:
    types: set[str] = set()
    for sub in subs:
        t = sub.get("type") if isinstance(sub, dict) else None
        if isinstance(t, str):
            types.add(t)
        elif isinstance(t, list):
            types.update(t)
    return types


def _mutations(value: Any, schema: Any, where: str, depth: int = 0
               ) -> Iterator[tuple[str, str, Any]]:
    """(description, JSON path, mutated value) for one object and its nested objects."""
    if not isinstance(value, dict) or depth > 2:
        return
    props = _props(schema)
    for name in list(value):
        dropped = {k: v for k, v in value.items() if k != name}
        yield f"drop {where}{name}", f"{where}{name}", dropped
        subs = props.get(name)
        if not subs:
            continue
        types = _types(subs)
        if types:
            wrong = WRONG_CONTAINER if types & {"object", "array"} else WRONG_SCALAR
            yield f"wrong type {where}{name}", f"{where}{name}", {**value, name: wrong}
        if any(isinstance(s, dict) and "enum" in s for s in subs):
            yield f"bad enum {where}{name}", f"{where}{name}", {**value, name: WRONG_ENUM}
        for sub in subs:
            for desc, path, mutated in _mutations(value[name], sub, f"{where}{name}.",
                                                  depth + 1):
                yield desc, path, {**value, name: mutated}


@cache
def invalid_examples(key: str) -> tuple[tuple[str, str, Any], ...]:
    _, _, ref, _ = OPERATIONS[key]
    check = validator(ref)
    out: list[tuple[str, str, Any]] = []
    seen: list[Any] = []
    for ex in examples(key):
        if key == "batch":
            for i, op in enumerate(ex["batch"]):
                item_schema = resolve({"$ref": ref})["properties"]["batch"]["items"]
                for desc, path, mutated in _mutations(op, item_schema, ""):
                    body = copy.deepcopy(ex)
                    body["batch"][i] = mutated
                    if not check.is_valid(body) and body not in seen:
                        seen.append(body)
                        out.append((f"op {i}: {desc}", path, body))
            continue
        for desc, path, mutated in _mutations(ex, {"$ref": ref}, ""):
            if not check.is_valid(mutated) and mutated not in seen:
                seen.append(mutated)
                out.append((desc, path, mutated))
    return tuple(out)


# --- the tests ---------------------------------------------------------------------------------
def _send(track: httpx.Client, app_api: httpx.Client, key: str, body: Any) -> httpx.Response:
    method, path, _, api = OPERATIONS[key]
    return (track if api == "track" else app_api).request(method, path, json=body)


def _prepare(track: httpx.Client) -> None:
    """State the examples assume: the people that merge examples name."""
    for pid in ("42", "known-user-456"):
        track.put(f"/api/v1/customers/{pid}", json={})


VALID = [(key, i) for key in OPERATIONS for i in range(len(examples(key)))]
INVALID = [(key, i) for key in OPERATIONS for i in range(len(invalid_examples(key)))]


def test_every_operation_has_spec_examples() -> None:
    counts = {key: len(examples(key)) for key in OPERATIONS}
    assert all(counts.values()), counts
    assert counts["entity"] >= 15  # one per v2 action and type


@pytest.mark.parametrize(("key", "index"), VALID, ids=[f"{k}-{i}" for k, i in VALID])
def test_sandbox_accepts_what_the_spec_allows(track: httpx.Client, app_api: httpx.Client,
                                              key: str, index: int) -> None:
    if key in ("merge", "entity", "batch"):
        _prepare(track)
    body = examples(key)[index]
    r = _send(track, app_api, key, body)
    assert r.status_code == 200, (body, r.text)


@pytest.mark.parametrize(("key", "index"), INVALID,
                         ids=[f"{k}-{i}: {invalid_examples(k)[i][0]}" for k, i in INVALID])
def test_sandbox_refuses_what_the_spec_forbids(track: httpx.Client, app_api: httpx.Client,
                                               key: str, index: int) -> None:
    if key in ("merge", "entity", "batch"):
        _prepare(track)
    _, _, body = invalid_examples(key)[index]
    r = _send(track, app_api, key, body)
    if key == "batch":
        assert r.status_code in (207, 400), (body, r.text)
    else:
        assert r.status_code in (400, 413), (body, r.text)


@pytest.mark.parametrize(("key", "body"), [
    ("entity", {"type": "person", "identifiers": {"id": 42}, "action": "identify"}),
    ("send_push", {"transactional_message_id": 44, "identifiers": {"id": 12345}}),
    ("identify", {"price": 9.5, "address": {"city": "Lagos"}, "tags": ["a"]}),
])
def test_documented_leniencies(track: httpx.Client, app_api: httpx.Client, key: str,
                               body: Any) -> None:
    assert not validator(OPERATIONS[key][2]).is_valid(body)
    assert _send(track, app_api, key, body).status_code == 200
