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


def test_the_validator_can_fail() -> None:
    bad = {"batch": [{"type": "person", "identifiers": {"id": "42"}, "action": "event"}]}
    assert not validator(body_ref("/api/v2/batch", "post")).is_valid(bad), "event needs a name"
