"""Customer.io's Track OpenAPI document (read from ../shared, never copied) as validators."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .shared import SPEC, require

SPEC_PATH = SPEC / "track-api.openapi.json"
URI = "urn:customerio:track"


def _unions(node: Any) -> Any:
    """OpenAPI documents use ``oneOf`` for tagged unions whose branches overlap (an email
    metric matches both the "Email" and "SMS" branches), which JSON Schema's exclusive
    ``oneOf`` then rejects; read them as the unions they are meant to be."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _unions(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unions(v) for v in node]
    return node


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = _unions(json.loads(require(SPEC_PATH).read_text()))
    return loaded


@cache
def registry() -> Registry:
    resource: Resource[Any] = DRAFT202012.create_resource(spec())
    return Registry().with_resource(URI, resource)


def pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": URI + ref}, registry=registry())


def body_ref(path: str, method: str) -> str:
    """The JSON pointer of an operation's request body schema."""
    return pointer("paths", path, method, "requestBody", "content", "application/json", "schema")
