"""Gateway encoder and send validation. Pure data, no I/O."""

from __future__ import annotations

import base64

import orjson
import pytest

from opencdp.destinations import opencdp as gw
from opencdp.destinations.base import Dead, Delivered, Failure, Response, Retry
from opencdp.errors import ValidationError
from opencdp.message import Message, new_ulid
from opencdp.outbox.base import Leased


def test_person_bodies_use_the_gateway_casing() -> None:
    track = Leased(Message(new_ulid(), "track", "u1", "purchase", {"amount": 1}, None, 1))
    request = gw.encode(track)
    assert request.path == "/v1/persons/track"
    assert orjson.loads(request.body or b"") == {
        "identifier": "u1", "eventName": "purchase", "properties": {"amount": 1}}
    assert request.headers["Idempotency-Key"] == track.message.ulid
    device = Leased(Message(new_ulid(), "add_device", "u1", "dev", {
        "platform": "android", "fcm_token": "f", "app_version": "1.0", "last_active_at": "x"},
        None, 1))
    assert orjson.loads(gw.encode(device).body or b"") == {
        "identifier": "u1", "deviceId": "dev", "platform": "android", "fcmToken": "f",
        "appVersion": "1.0", "last_active_at": "x"}
    identify = Leased(Message(new_ulid(), "identify", "u1", None, None, None, 1))
    assert orjson.loads(gw.encode(identify).body or b"") == {"identifier": "u1", "properties": {}}


def test_outcomes() -> None:
    item = Leased(Message(new_ulid(), "identify", "u1", None, {}, None, 1))
    request = gw.encode(item)
    assert isinstance(gw.classify(request, Response(200, b"{}", {}), 0)[0], Delivered)
    assert isinstance(gw.classify(request, Response(503, b"", {}), 0)[0], Retry)
    dead = gw.classify(request, Response(400, b'{"message": "bad id"}', {}), 0)[0]
    assert isinstance(dead, Dead) and "bad id" in dead.reason


@pytest.mark.parametrize(
    ("result", "allowed"),
    [(Failure("ConnectError", "connect"), True),
     (Failure("ReadTimeout", "timeout"), False),
     (Response(521, b"", {}), True), (Response(523, b"", {}), True),
     (Response(525, b"", {}), True), (Response(526, b"", {}), True),
     (Response(502, b"", {}), False), (Response(503, b"", {}), False),
     (Response(522, b"", {}), False), (Response(524, b"", {}), False),
     (Response(500, b"", {}), False), (Response(400, b"", {}), False)],
)
def test_send_safe_failover_rule(result: Response | Failure, allowed: bool) -> None:
    assert gw.send_failover_allowed(result) is allowed


def test_send_email_template_and_raw() -> None:
    body = gw.build_send("email", {"to": "ada@example.com", "identifiers": {"id": "u1"},
                                   "transactional_message_id": 44, "subject": None})
    assert body == {"to": "ada@example.com", "identifiers": {"id": "u1"},
                    "transactional_message_id": "44"}
    with pytest.raises(ValidationError, match="body is required") as info:
        gw.build_send("email", {"to": "ada@example.com", "identifiers": {"id": "u1"}})
    assert info.value.field == "body"


@pytest.mark.parametrize(
    ("channel", "fields", "field"),
    [("email", {"to": "nope", "identifiers": {"id": "1"}, "transactional_message_id": 1}, "to"),
     ("email", {"to": "a@b.co", "identifiers": {"id": "1", "email": "a@b.co"},
                "transactional_message_id": 1}, "identifiers"),
     ("email", {"to": "a@b.co", "identifiers": {}, "transactional_message_id": 1}, "identifiers"),
     ("push", {"identifiers": {"id": "1"}}, "transactional_message_id"),
     ("sms", {"identifiers": {"id": "1"}, "transactional_message_id": "x", "to": "0800"}, "to"),
     ("sms", {"identifiers": {"id": "1"}}, "body"),
     ("whatsapp", {"identifiers": {"id": "1"}, "transactional_message_id": "T",
                   "template_variables": {"body": {"first": "x"}}}, "template_variables.body"),
     ("whatsapp", {"identifiers": {"id": "1"}, "transactional_message_id": "T", "body": "x"},
      "body"),
     ("email", {"to": "a@b.co", "identifiers": {"id": "1"}, "transactional_message_id": 1,
                "send_at": -1}, "send_at")],
)
def test_send_validation_names_the_field(channel: str, fields: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        gw.build_send(channel, fields)
    assert info.value.field == field


def test_attachment_limits() -> None:
    ok = {"a.pdf": base64.b64encode(b"x" * 10).decode()}
    base = {"to": "a@b.co", "identifiers": {"id": "1"}, "transactional_message_id": 1}
    assert gw.build_send("email", {**base, "attachments": ok})["attachments"] == ok
    too_many = {f"f{i}.txt": "eA==" for i in range(6)}
    with pytest.raises(ValidationError, match="at most 5"):
        gw.build_send("email", {**base, "attachments": too_many})
    big = {"big.bin": base64.b64encode(b"x" * (2 * 1024 * 1024 + 1)).decode()}
    with pytest.raises(ValidationError, match="2097152"):
        gw.build_send("email", {**base, "attachments": big})
    with pytest.raises(ValidationError, match="base64"):
        gw.build_send("email", {**base, "attachments": {"a.txt": "not base64!"}})
    with pytest.raises(ValidationError, match="not allowed"):
        gw.build_send("email", {**base, "attachments": {"../a.txt": "eA=="}})
