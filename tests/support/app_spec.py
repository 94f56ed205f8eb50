"""Customer.io's App API OpenAPI documents (read from ../shared, never copied) as validators
of the sandbox's answers."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from .openapi import _unions
from .shared import SPEC, require

APP_SPEC = SPEC / "app-api"
DOCUMENTS = {"/v1/customers": "customers", "/v1/customers/attributes": "customers",
             "/v1/activities": "activities"}


def document_path(path: str) -> Path:
    return APP_SPEC / f"customer-io-{DOCUMENTS[path]}-api-openapi.yml"


@cache
def _document(name: str) -> dict[str, Any]:
    # oneOf read as anyOf: the activity ``data`` union's branches overlap (an object of plain
    # values matches both "Message delivery" and "Attribute change"), as in the Track spec.
    loaded: dict[str, Any] = _unions(yaml.safe_load(require(APP_SPEC / name).read_text()))
    return loaded


@cache
def response_validator(path: str, method: str, status: str = "200") -> Draft202012Validator:
    """The schema of ``path``'s ``method`` answer with ``status``; the documents hold no
    ``$ref``, so each schema stands alone."""
    doc = _document(document_path(path).name)
    schema = doc["paths"][path][method.lower()]["responses"][status]["content"][
        "application/json"]["schema"]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(path: str, method: str, answer: Any) -> None:
    errors = sorted(response_validator(path, method).iter_errors(answer), key=str)
    assert not errors, f"{method} {path}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])


def operation(path: str, method: str) -> dict[str, Any]:
    op: dict[str, Any] = _document(document_path(path).name)["paths"][path][method.lower()]
    return op
