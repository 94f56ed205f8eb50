"""The relay's pure parts: wire bodies to call arguments, upstream results to answers, keys."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from opencdp.destinations.base import Failure, Response
from opencdp.errors import ValidationError
from opencdp.server.auth import KeyCheck, unauthorized_message
from opencdp.server.gateway import parse_device, parse_identify, parse_track, send_answer
from opencdp.transport import failure_from


def test_identify_body() -> None:
    assert parse_identify({"identifier": "u1", "properties": {"a": 1}}) == ("u1", {"a": 1})
    assert parse_identify({"identifier": 42}) == (42, {})
    assert parse_identify({"identifier": "u1", "properties": None}) == ("u1", {})


def test_track_body() -> None:
    body = {"identifier": "u1", "eventName": "purchase", "properties": {"amount": 9.5}}
    assert parse_track(body) == ("u1", "purchase", {"amount": 9.5})


def test_device_body_maps_to_client_options() -> None:
    body = {"identifier": "u1", "deviceId": "d1", "platform": "ios", "fcmToken": "f",
            "apnToken": "a", "name": "Phone", "osVersion": "17", "model": "X",
            "appVersion": "1.0", "last_active_at": "2026-01-01T00:00:00Z",
            "attributes": {"k": "v"}}
    assert parse_device(body) == ("u1", "d1", "ios", {
        "fcm_token": "f", "apn_token": "a", "name": "Phone", "os_version": "17", "model": "X",
        "app_version": "1.0", "last_active_at": "2026-01-01T00:00:00Z",
        "attributes": {"k": "v"}})


@pytest.mark.parametrize(
    ("parse", "body", "field"),
    [
        (parse_identify, {"identifier": "ada@example.com"}, "identifier"),
        (parse_identify, {"identifier": None}, "identifier"),
        (parse_identify, {"identifier": True}, "identifier"),
        (parse_identify, {"identifier": "u1", "properties": [1]}, "properties"),
        (parse_identify, {"identifier": "u1", "traits": {}}, "traits"),
        (parse_track, {"identifier": "u1", "eventName": "x", "properties": "p"}, "properties"),
        (parse_track, {"identifier": "u1", "eventName": "x", "name": "y"}, "name"),
        (parse_device, {"identifier": "u1", "deviceId": "d", "platform": "ios"}, "fcmToken"),
        (parse_device, {"identifier": "u1", "deviceId": "d", "platform": "ios",
                        "fcmToken": 5}, "fcmToken"),
        (parse_device, {"identifier": "u1", "deviceId": "d", "platform": "ios",
                        "fcmToken": "t", "attributes": 3}, "attributes"),
    ],
)
def test_bad_bodies_name_the_wire_field(parse: Any, body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse(body)
    assert info.value.field == field


def test_upstream_answers_pass_through() -> None:
    upstream = Response(404, b'{"message":"template not found"}',
                        {"content-type": "application/json", "retry-after": "3",
                         "location": "https://elsewhere"})
    answer = send_answer(upstream)
    assert answer.status_code == 404
    assert answer.body == b'{"message":"template not found"}'
    assert answer.headers["retry-after"] == "3"
    assert "location" not in answer.headers


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (asyncio.TimeoutError(), 504),
        (ConnectionResetError("reset by peer"), 502),
    ],
)
def test_maybe_received_failures_are_gateway_errors(exc: BaseException, status: int) -> None:
    failure = failure_from(exc)
    assert failure.maybe_received
    answer = send_answer(failure)
    assert answer.status_code == status
    assert b"may have been received" in answer.body


def test_a_send_that_never_left_says_so_in_the_sdks_own_terms() -> None:
    answer = send_answer(Failure("ClientConnectorError: connection not established",
                                 "connect"))
    # 523 is one of the statuses the SDKs' send-safe rule treats as "never reached".
    assert answer.status_code == 523
    assert "not received" in orjson.loads(answer.body)["message"]


def test_key_check() -> None:
    keys = KeyCheck(("key-one", "key-two"))
    assert keys.accepts(b"key-one") and keys.accepts(b"key-two")
    assert keys.accepts(b" key-two ")
    assert not keys.accepts(None)
    assert not keys.accepts(b"")
    assert not keys.accepts(b"key-on")
    assert not keys.accepts(b"Bearer key-one")
    assert not keys.accepts("k\u00e9y".encode())
    assert "key-one" not in repr(keys)


def test_unauthorized_messages_say_what_to_fix() -> None:
    assert "Missing" in unauthorized_message(None)
    assert "without 'Bearer '" in unauthorized_message(b"Bearer whatever")
    assert unauthorized_message(b"nope") == "Invalid API key"
