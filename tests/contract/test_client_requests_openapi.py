"""Every request our Customer.io encoder builds validates against Customer.io's Track OpenAPI."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from opencdp.destinations import customerio as cio
from opencdp.message import Message, new_ulid
from opencdp.outbox.base import Leased
from support.openapi import body_ref, validator

MESSAGES = {
    "identify": Message(new_ulid(), "identify", "42", None,
                        {"email": "ada@example.com", "plan": "pro", "anonymous_id": "a-1"},
                        1_700_000_000, 2),
    "track": Message(new_ulid(), "track", "42", "purchase", {"price": 9.5, "sku": "A"}, None, 2),
    "track_no_data": Message(new_ulid(), "track", "42", "signed_up", None, 1_700_000_000, 2),
    "add_device": Message(new_ulid(), "add_device", "42", "dev-1",
                          {"platform": "ios", "apn_token": "tok", "last_used": 1_700_000_000,
                           "model": "iPhone", "attributes": {"push_enabled": "true"}}, None, 2),
    "delete_device": Message(new_ulid(), "delete_device", "42", "tok", None, None, 2),
    "suppress": Message(new_ulid(), "suppress", "42", None, None, None, 2),
    "unsuppress": Message(new_ulid(), "unsuppress", "42", None, None, None, 2),
    "delete": Message(new_ulid(), "delete", "42", None, None, None, 2),
    "merge": Message(new_ulid(), "merge", "42", None,
                     {"primary": {"id": "42"}, "secondary": {"email": "old@example.com"}},
                     None, 2),
    "cio_id": Message(new_ulid(), "identify", "cio_abc123", None, {"plan": "x"}, None, 2),
    "identify_by_email": Message(new_ulid(), "identify:email", "ada@example.com", None,
                                 {"plan": "pro"}, None, 2),
    "track_by_phone": Message(new_ulid(), "track:phone", "+15551234567", "renewed",
                              {"n": 1}, None, 2),
    "suppress_by_cio_id": Message(new_ulid(), "suppress:cio_id", "abc123", None, None, None, 2),
    "page": Message(new_ulid(), "page", "42", "/pricing", {"referrer": "https://x.test"},
                    1_700_000_000, 3),
    "screen": Message(new_ulid(), "screen", "42", "Checkout", None, None, 3),
    "add_relationships": Message(new_ulid(), "add_relationships", "42", None, {
        "relationships": [{"identifiers": {"object_type_id": "1", "object_id": "acme"},
                           "relationship_attributes": {"role": "admin"}}]}, None, 2),
    "delete_relationships": Message(new_ulid(), "delete_relationships:email", "a@example.com",
                                    None, {"relationships": [
                                        {"identifiers": {"cio_object_id": "obj1"}}]}, None, 2),
    "object_identify": Message(new_ulid(), "object_identify", "acme", "1", {"name": "Acme"},
                               None, 2),
    "object_delete": Message(new_ulid(), "object_delete", "acme", "1", None, None, 2),
    "object_anonymous": Message(new_ulid(), "object_anonymous", "acme", "1",
                                {"anonymous_id": "anon-1", "attributes": {"role": "trial"}},
                                None, 2),
    "delivery_event": Message(new_ulid(), "delivery_event", "RPIyMTM6OjEyMzQ=", "opened",
                              {"device_token": "tok-1"}, 1_700_000_000, 2),
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_each_batch_operation_matches_the_spec(kind: str) -> None:
    (request,), refused = cio.encode([Leased(MESSAGES[kind])])
    assert not refused
    assert request.path == "/api/v2/batch"
    body: Any = orjson.loads(request.body or b"")
    errors = list(validator(body_ref("/api/v2/batch", "post")).iter_errors(body))
    assert not errors, [e.message for e in errors]


def test_a_mixed_batch_matches_the_spec() -> None:
    (request,), _ = cio.encode([Leased(m) for m in MESSAGES.values()])
    body: Any = orjson.loads(request.body or b"")
    assert len(body["batch"]) == len(MESSAGES)
    assert validator(body_ref("/api/v2/batch", "post")).is_valid(body)


def test_anonymous_events_match_the_v1_spec() -> None:
    message = Message(new_ulid(), "track_anonymous", "anon-1", "page_viewed", {"url": "/"},
                      None, 2)
    (request,), _ = cio.encode([Leased(message)])
    assert request.path == "/api/v1/events"
    body: Any = orjson.loads(request.body or b"")
    errors = list(validator(body_ref("/api/v1/events", "post")).iter_errors(body))
    assert not errors, [e.message for e in errors]


V1_MESSAGES = {
    "/api/v1/events": Message(new_ulid(), "page_anonymous", "anon-1", "/pricing",
                              {"title": "Pricing"}, None, 2),
    "/api/v1/metrics": Message(new_ulid(), "metric", "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "clicked",
                               {"href": "https://x.test", "recipient": "a@example.com"},
                               None, 2),
    "/unsubscribe/{delivery_id}": Message(new_ulid(), "unsubscribe", "RPI/1", None, None, None,
                                          2),
    "/api/v1/segments/{segment_id}/add_customers": Message(
        new_ulid(), "segment_add", "7", "email", {"ids": ["a@example.com"]}, None, 2),
    "/api/v1/segments/{segment_id}/remove_customers": Message(
        new_ulid(), "segment_remove", "7", "id", {"ids": ["42", "43"]}, None, 2),
}


@pytest.mark.parametrize("path", sorted(V1_MESSAGES))
def test_each_v1_request_matches_the_spec(path: str) -> None:
    (request,), refused = cio.encode([Leased(V1_MESSAGES[path])])
    assert not refused
    template = path.split("{", 1)[0]
    assert request.path.startswith(template), request.path
    assert "{" not in request.path
    body: Any = orjson.loads(request.body or b"")
    errors = list(validator(body_ref(path, "post")).iter_errors(body))
    assert not errors, [e.message for e in errors]


def test_the_validator_can_fail() -> None:
    bad = {"batch": [{"type": "person", "identifiers": {"id": "42"}, "action": "event"}]}
    assert not validator(body_ref("/api/v2/batch", "post")).is_valid(bad), "event needs a name"
