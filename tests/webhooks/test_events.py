"""Parsing webhook bodies into typed events, and the errors for bodies that are not events."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from opencdp.errors import ValidationError
from opencdp.webhooks import Identifiers, WebhookEvent, event_name, parse_event

# The example in Customer.io's wire reference (spec/customerio.md, section 10).
SPEC_EXAMPLE = b"""{"event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": "email",
 "metric": "bounced", "timestamp": 1613063089,
 "data": {"delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "action_id": 42, "campaign_id": 5,
          "customer_id": "42",
          "identifiers": {"id": "42", "email": "ada@example.com", "cio_id": "d9c106000001"},
          "recipient": "ada@example.com", "subject": "Hi",
          "failure_message": "550 mailbox unavailable"}}"""


def test_spec_example_parses_into_typed_fields() -> None:
    event = parse_event(SPEC_EXAMPLE)
    assert event == WebhookEvent(
        event_id="01E4C4CT6YDC7Y5M7FE1GWWPQJ",
        object_type="email",
        metric="bounced",
        timestamp=1613063089,
        data=orjson.loads(SPEC_EXAMPLE)["data"],
        identifiers=Identifiers(id="42", email="ada@example.com", cio_id="d9c106000001"),
        delivery_id="RPILAgUBcRhIBqSfeiIwdIYJKxTY",
        recipient="ada@example.com",
        customer_id="42",
        failure_message="550 mailbox unavailable",
    )
    assert event.name == "email_bounced"
    assert event.person_id == "42"
    assert event.email == "ada@example.com"
    assert event.occurred_at == datetime(2021, 2, 11, 17, 4, 49, tzinfo=timezone.utc)
    assert event.data["campaign_id"] == 5


def test_events_are_frozen() -> None:
    event = parse_event(SPEC_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.metric = "sent"  # type: ignore[misc]


def test_str_and_decoded_bodies_parse_the_same() -> None:
    assert parse_event(SPEC_EXAMPLE.decode()) == parse_event(SPEC_EXAMPLE)
    assert parse_event(orjson.loads(SPEC_EXAMPLE)) == parse_event(SPEC_EXAMPLE)


def test_customer_event_email_and_names() -> None:
    body = {
        "event_id": "e1",
        "object_type": "customer",
        "metric": "cio_subscription_preferences_changed",
        "timestamp": 1,
        "data": {
            "customer_id": "7",
            "email_address": "bo@example.com",
            "identifiers": {"id": None, "email": None},
        },
    }
    event = parse_event(body)
    assert event.email == "bo@example.com"
    assert event.identifiers == Identifiers()
    assert event.person_id == "7"
    assert event.name == "customer_subscription_preferences_changed"
    assert event_name("email", "bounced") == "email_bounced"


def test_lenient_where_the_payload_was_signed() -> None:
    """Unknown types parse, numbers as ids become strings, odd optional fields read as None."""
    event = parse_event(
        {
            "event_id": "e2",
            "object_type": "carrier_pigeon",
            "metric": "landed",
            "timestamp": 1700000000.0,
            "data": {"identifiers": {"id": 42, "email": ["x"]}, "recipient": {"a": 1}},
        }
    )
    assert event.object_type == "carrier_pigeon"
    assert (event.metric, event.timestamp) == ("landed", 1700000000)
    assert event.identifiers == Identifiers(id="42")
    assert event.recipient is None
    assert event.person_id == "42"


def test_missing_object_type_reads_as_customer_and_missing_data_as_empty() -> None:
    event = parse_event({"event_id": "e3", "metric": "subscribed", "timestamp": 5})
    assert event.object_type == "customer"
    assert event.data == {}
    assert event.person_id is None


def test_blank_customer_id_is_no_person() -> None:
    """Customer.io blanks ``customer_id`` for deleted people."""
    event = parse_event(
        {"event_id": "e4", "metric": "sent", "timestamp": 5, "data": {"customer_id": ""}}
    )
    assert event.person_id is None


GOOD: dict[str, Any] = {"event_id": "e", "object_type": "email", "metric": "sent", "timestamp": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"{not json", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (b'"event"', "body"),
        ({**GOOD, "event_id": None}, "event_id"),
        ({**GOOD, "event_id": ""}, "event_id"),
        ({**GOOD, "event_id": 12}, "event_id"),
        ({k: v for k, v in GOOD.items() if k != "metric"}, "metric"),
        ({**GOOD, "metric": "  "}, "metric"),
        ({**GOOD, "object_type": 3}, "object_type"),
        ({**GOOD, "object_type": ""}, "object_type"),
        ({k: v for k, v in GOOD.items() if k != "timestamp"}, "timestamp"),
        ({**GOOD, "timestamp": "1613063089"}, "timestamp"),
        ({**GOOD, "timestamp": True}, "timestamp"),
        ({**GOOD, "timestamp": -1}, "timestamp"),
        ({**GOOD, "timestamp": 1.5}, "timestamp"),
        ({**GOOD, "data": []}, "data"),
        ({**GOOD, "data": "x"}, "data"),
        ({**GOOD, "data": {"identifiers": ["42"]}}, "data.identifiers"),
    ],
)
def test_malformed_bodies_raise_validation_error(body: Any, field: str) -> None:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(ValidationError) as info:
        parse_event(raw)
    assert info.value.field == field
    assert str(info.value)
