"""The sandbox answers every example in Customer.io's Track OpenAPI document as documented.

Examples are read from ``../shared/spec/customerio/track-api.openapi.json`` (never copied):
each operation's JSON code sample and request-body ``example``, sent with every example of
its path parameters. The documented answer is the operation's success status (200 with an
empty object, or the form's 204); the region lookup answers in its documented shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from opencdp.sandbox import Sandbox
from support.openapi import SPEC_PATH, spec
from support.shared import require

require(SPEC_PATH, module=True)

SITE, TRACK_KEY = "sandbox-site", "sandbox-track-key"


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec()
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _param_examples(parameter: dict[str, Any]) -> list[str]:
    """A path parameter's examples: its own, its schema's, and each union branch's."""
    parameter = _resolve(parameter)
    schema = _resolve(parameter.get("schema", {}))
    found = [parameter.get("example"), schema.get("example")]
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        found.append(_resolve(branch).get("example"))
    return [str(v) for v in found if v is not None]


def _bodies(op: dict[str, Any]) -> list[Any]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    bodies = [json.loads(s["source"]) for s in op.get("x-codeSamples", [])
              if s.get("lang") == "json"]
    for holder in (content, content.get("schema", {})):
        if "example" in holder:
            bodies.append(holder["example"])
        bodies.extend(e.get("value") for e in holder.get("examples", {}).values()
                      if isinstance(e, dict))
    unique: list[Any] = []
    for body in bodies:
        if body not in unique:
            unique.append(body)
    return unique or [None]


def _cases() -> Iterator[Any]:
    for path, ops in spec()["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            params = [_resolve(p) for p in [*ops.get("parameters", []),
                                            *op.get("parameters", [])]]
            names = [p["name"] for p in params if p.get("in") == "path"]
            values = {p["name"]: _param_examples(p) or ["example-1"] for p in params
                      if p.get("in") == "path"}
            if "segment_id" in values:
                values["segment_id"] = ["7"]  # an int32 id; the document gives none
            combos: list[dict[str, str]] = [{}]
            for name in names:
                combos = [{**c, name: v} for c in combos for v in values[name]]
            for combo in combos:
                for i, body in enumerate(_bodies(op)):
                    label = f"{method.upper()} {path} {combo or ''} #{i}"
                    yield pytest.param(path, method, combo, body, id=label)


CASES = list(_cases())


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0) as sb:
        yield sb


@pytest.fixture(scope="module")
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.track_url, auth=(SITE, TRACK_KEY), timeout=10,
                      trust_env=False) as c:
        yield c


def test_every_operation_has_an_example_case() -> None:
    operations = {(c.values[0], c.values[1]) for c in CASES}
    assert len(operations) == 18
    assert len(CASES) >= 25


@pytest.mark.parametrize(("path", "method", "params", "body"), CASES)
def test_each_example_gets_the_documented_answer(sandbox: Sandbox, http: httpx.Client, path: str,
                                                 method: str, params: dict[str, str],
                                                 body: Any) -> None:
    sandbox.reset()
    url = path
    for name, value in params.items():
        url = url.replace("{" + name + "}", quote(value, safe=""))
    r = http.request(method.upper(), url, json=body)
    responses = spec()["paths"][path][method]["responses"]
    success = min(int(s) for s in responses if s.startswith("2"))
    assert r.status_code == success, r.text
    if success == 204:
        assert r.content == b""
    elif path == "/api/v1/accounts/region":
        shape = _resolve(responses["200"])["content"]["application/json"]["schema"]
        answer = r.json()
        assert set(answer) == set(shape["properties"])
        assert answer["region"] in shape["properties"]["region"]["enum"]
        assert isinstance(answer["environment_id"], int)
    else:
        assert r.json() == {}
    assert sandbox.stats()["customerio"]["rejected_total"] == 0


def test_the_examples_are_stored(sandbox: Sandbox, http: httpx.Client) -> None:
    """What the batch and entity examples describe is there to inspect afterwards."""
    sandbox.reset()
    for path in ("/api/v2/batch", "/api/v2/entity"):
        for body in _bodies(spec()["paths"][path]["post"]):
            assert http.post(path, json=body).status_code == 200
    person = sandbox.person("customerio", "42")
    assert person["attributes"] == {"first_name": "Jane", "last_name": "Doe",
                                    "plan": "premium"}
    objects = httpx.get(f"{sandbox.admin_url}/objects", trust_env=False).json()
    assert objects == [{"object_type_id": "1", "object_id": "acme",
                        "attributes": {"name": "Acme Corp", "plan": "enterprise",
                                       "seats": 50},
                        "relationships": [{"identifiers": {"id": "42"},
                                           "relationship_attributes": {"role": "admin"}}]}]
