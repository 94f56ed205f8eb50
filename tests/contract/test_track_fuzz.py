"""Schema-based fuzzing of the sandbox from Customer.io's Track OpenAPI document.

schemathesis reads ``../shared/spec/customerio/track-api.openapi.json`` (never copied) and
generates requests for every operation: schema-valid ones (``positive``) and ones that break
the schema (``negative``). Each goes to a real sandbox over loopback HTTP, and every answer
must be one the documents describe: never a 5xx; a status the operation documents, or the
400 that Customer.io documents for every Track call (customerio.md §3: "400
``{"meta": {"errors": ["..."]}}``", §4: "400: the entire request was rejected,
``{"errors": [{"reason", "field", "message"}]}``"); and a body of that status's documented
shape.

The default run is bounded (a few hundred requests, well under a minute);
``OPENCDP_FUZZ_EXAMPLES=2000`` (per operation and mode) runs a long, randomised one.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings

from opencdp.sandbox import Sandbox
from support.openapi import SPEC_PATH, pointer, spec, validator
from support.shared import require

require(SPEC_PATH, module=True)

schemathesis = pytest.importorskip("schemathesis")

SITE, TRACK_KEY = "sandbox-site", "sandbox-track-key"
EXAMPLES = int(os.environ.get("OPENCDP_FUZZ_EXAMPLES", "0") or 0)
LONG = EXAMPLES > 0
POSITIVE = EXAMPLES or 30
NEGATIVE = EXAMPLES or 15
ERRORS_V1 = pointer("components", "responses", "400", "content", "application/json", "schema")
ERRORS_V2 = pointer("paths", "/api/v2/batch", "post", "responses", "400", "content",
                    "application/json", "schema")


def _operations() -> list[Any]:
    """The document's operations, its ``oneOf`` unions read as ``anyOf`` (see
    ``support.openapi``: their branches overlap, so an exclusive ``oneOf`` is unsatisfiable,
    e.g. a person identifier that is both a valid ``id`` and a valid ``email``)."""
    schema = schemathesis.openapi.from_dict(spec())
    return [result.ok() for result in schema.get_all_operations()]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0) as sb:
        yield sb


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        s.auth = (SITE, TRACK_KEY)
        yield s


def documented(path: str, method: str) -> dict[str, Any]:
    responses: dict[str, Any] = spec()["paths"][path][method]["responses"]
    return responses


def _response_schema(path: str, method: str, status: int) -> str | None:
    """The pointer of the JSON schema the operation documents for ``status``, if any."""
    entry = documented(path, method).get(str(status))
    if entry is None:
        return None
    parts: tuple[str, ...] = ("paths", path, method, "responses", str(status))
    if "$ref" in entry:
        name = entry["$ref"].rsplit("/", 1)[1]
        parts = ("components", "responses", name)
        entry = spec()["components"]["responses"][name]
    if "application/json" not in entry.get("content", {}):
        return None
    if "schema" not in entry["content"]["application/json"]:
        return None
    return pointer(*parts, "content", "application/json", "schema")


def check_answer(path: str, method: str, status: int, body: bytes, content_type: str) -> None:
    """Fail unless (status, body) is an answer the documents give for this operation."""
    label = f"{method.upper()} {path} -> {status} {body[:300]!r}"
    assert status < 500, label
    listed = {int(s) for s in documented(path, method) if s.isdigit()} | {400}
    if spec()["paths"][path][method].get("security"):
        listed.add(401)  # the Basic auth scheme's "Unauthorized request"
    assert status in listed, label
    if status == 204:
        assert body == b"", label
        return
    assert content_type.startswith("application/json"), label
    parsed = orjson.loads(body)
    ref = _response_schema(path, method, status)
    if ref is None and status == 400:
        ref = ERRORS_V2 if path.startswith("/api/v2/") else ERRORS_V1
    if ref is None:
        if status == 200:
            assert parsed == {}, f"{label}: documented as an empty object"
        return
    if path == "/api/v1/accounts/region":
        parsed = {**parsed, "url": "https://track.customer.io"}  # the sandbox's own URL
    errors = [e.message for e in validator(ref).iter_errors(parsed)]
    assert not errors, f"{label}: {errors}"
    if status == 400:
        assert all(isinstance(m, str) and m.strip() for m in _messages(path, parsed)), label


def _messages(path: str, parsed: Any) -> list[Any]:
    """The error descriptions of a 400 (v2 ``errors[].message``; v1 ``meta.errors``, or
    merge's ``meta.error``); at least one."""
    assert isinstance(parsed, dict)
    if path.startswith("/api/v2/"):
        errors = parsed.get("errors")
        assert isinstance(errors, list) and errors
        assert all(isinstance(e, dict) for e in errors)
        return [e.get("message") for e in errors]
    meta = parsed.get("meta")
    assert isinstance(meta, dict)
    messages = meta["errors"] if "errors" in meta else [meta.get("error")]
    assert isinstance(messages, list) and messages
    return messages


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_every_generated_request_gets_a_documented_answer(
        sandbox: Sandbox, session: requests.Session, operation: Any, mode: str) -> None:
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))
    path, method = operation.path, operation.method.lower()
    seen: list[int] = []

    @settings(max_examples=POSITIVE if mode == "positive" else NEGATIVE, deadline=None,
              database=None, derandomize=not LONG, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(base_url=sandbox.track_url, session=session, timeout=10)
        seen.append(response.status_code)
        ctype = response.headers.get("content-type") or [""]
        check_answer(path, method, response.status_code, response.content,
                     ctype if isinstance(ctype, str) else ctype[0])

    run()
    assert seen, "no request was generated"
    if mode == "positive":
        statuses = Counter(seen)
        assert sum(n for s, n in statuses.items() if s < 300), (
            f"no schema-valid request was accepted: {sorted(statuses.items())}")
    assert sandbox.stats()["customerio"]["5xx"] == 0


def test_the_checker_can_fail() -> None:
    """The checker refuses a 5xx, an undocumented status, and a body of the wrong shape."""
    cases = [
        ("/api/v1/customers/{identifier}", "put", 500, b"{}", "application/json"),
        ("/api/v1/customers/{identifier}", "put", 404, b"{}", "application/json"),
        ("/api/v1/customers/{identifier}", "put", 200, b'{"ok": 1}', "application/json"),
        ("/api/v1/customers/{identifier}", "put", 400, b'{"errors": "x"}', "application/json"),
        ("/api/v2/batch", "post", 207, b'{"errors": [{"batch_index": "0"}]}',
         "application/json"),
        ("/api/v1/merge_customers", "post", 400, b'{"meta": {"error": 5}}', "application/json"),
        ("/api/v1/forms/{form_id}/submit", "post", 204, b"{}", "application/json"),
    ]
    for case in cases:
        with pytest.raises(AssertionError):
            check_answer(*case)
    check_answer("/api/v2/batch", "post", 207,
                 b'{"errors": [{"batch_index": 0, "reason": "r", "message": "m"}]}',
                 "application/json")
