"""The OpenCDP gateway emulation: every endpoint, its auth, and every rejection rule."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from .conftest import CDP_KEY, ULID_A

IDENTIFY = "/v1/persons/identify"
TRACK = "/v1/persons/track"
DEVICE = "/v1/persons/registerDevice"
DEVICE_OK = {"identifier": "u1", "deviceId": "dev-1", "platform": "android",
             "fcmToken": "fcm-1", "model": "Pixel 8", "attributes": {"k": "v"}}
EMAIL_OK = {"to": "ada@example.com", "identifiers": {"id": "u1"},
            "transactional_message_id": "WELCOME", "message_data": {"first_name": "Ada"}}


def _b64(n: int) -> str:
    return base64.b64encode(b"x" * n).decode()


def test_ping_needs_the_raw_key(sandbox: Any, gateway: httpx.Client) -> None:
    assert gateway.get("/v1/health/ping").status_code == 200
    with httpx.Client(base_url=sandbox.opencdp_url) as anon:
        missing = anon.get("/v1/health/ping")
        bearer = anon.get("/v1/health/ping", headers={"Authorization": f"Bearer {CDP_KEY}"})
        wrong = anon.get("/v1/health/ping", headers={"Authorization": "nope"})
    assert missing.status_code == bearer.status_code == wrong.status_code == 401
    assert "Bearer" in bearer.json()["message"]
    assert CDP_KEY not in bearer.text
    assert wrong.json() == {"message": "Invalid API key"}
    assert sandbox.stats()["opencdp"]["rejected"]["unauthorized"] == 3


def test_identify_stores_and_merges_properties(sandbox: Any, gateway: httpx.Client) -> None:
    assert gateway.post(IDENTIFY, json={"identifier": "u1", "properties": {"plan": "pro"}}
                        ).json() == {"status": "ok"}
    gateway.post(IDENTIFY, json={"identifier": " u1 ", "properties": {"first_name": "Ada"}})
    gateway.post(IDENTIFY, json={"identifier": "u2"})
    person = sandbox.person("opencdp", "u1")
    assert person["attributes"] == {"plan": "pro", "first_name": "Ada"}
    assert sandbox.stats()["opencdp"]["people"] == 2


@pytest.mark.parametrize(("body", "field", "text"), [
    ({"properties": {}}, "identifier", "Identifier cannot be empty"),
    ({"identifier": "   "}, "identifier", "Identifier cannot be empty"),
    ({"identifier": "ada@example.com"}, "identifier", "must not be an email"),
    ({"identifier": "x" * 256}, "identifier", "255"),
    ({"identifier": "u1", "properties": [1]}, "properties", "dictionary"),
])
def test_identify_rejections(gateway: httpx.Client, body: dict[str, Any], field: str,
                             text: str) -> None:
    r = gateway.post(IDENTIFY, json=body)
    assert r.status_code == 400
    assert r.json()["field"] == field
    assert text in r.json()["message"]


def test_invalid_json_and_non_object_bodies(gateway: httpx.Client) -> None:
    r = gateway.post(IDENTIFY, content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "JSON" in r.json()["message"]
    assert gateway.post(IDENTIFY, json=[1, 2]).status_code == 400


def test_track_stores_event_with_idempotency_key_as_id(sandbox: Any,
                                                       gateway: httpx.Client) -> None:
    body = {"identifier": "u1", "eventName": "purchase", "properties": {"amount": 9.5}}
    r = gateway.post(TRACK, json=body, headers={"Idempotency-Key": ULID_A})
    assert r.status_code == 200
    gateway.post(TRACK, json=body)
    events = sandbox.person("opencdp", "u1")["events"]
    assert [e["name"] for e in events] == ["purchase", "purchase"]
    assert events[0]["id"] == ULID_A
    assert events[0]["data"] == {"amount": 9.5}
    assert isinstance(events[0]["timestamp"], int)
    assert len(events[1]["id"]) == 26


def test_repeated_idempotency_key_is_counted_not_deduplicated(sandbox: Any,
                                                              gateway: httpx.Client) -> None:
    body = {"identifier": "u1", "eventName": "purchase"}
    for _ in range(3):
        assert gateway.post(TRACK, json=body, headers={"Idempotency-Key": ULID_A}
                            ).status_code == 200
    stats = sandbox.stats()["opencdp"]
    assert stats["duplicates"] == 2
    assert stats["events"] == 3


@pytest.mark.parametrize(("body", "field"), [
    ({"identifier": "u1"}, "eventName"),
    ({"identifier": "u1", "eventName": "  "}, "eventName"),
    ({"identifier": "u1", "eventName": "e" * 256}, "eventName"),
    ({"eventName": "x"}, "identifier"),
    ({"identifier": "u1", "eventName": "x", "properties": "no"}, "properties"),
])
def test_track_rejections(gateway: httpx.Client, body: dict[str, Any], field: str) -> None:
    r = gateway.post(TRACK, json=body)
    assert r.status_code == 400
    assert r.json()["field"] == field


def test_register_device_stores_the_device(sandbox: Any, gateway: httpx.Client) -> None:
    assert gateway.post(DEVICE, json=DEVICE_OK).status_code == 200
    gateway.post(DEVICE, json={**DEVICE_OK, "deviceId": "dev-2", "platform": "ios",
                               "fcmToken": None, "apnToken": "apn-2"})
    devices = sandbox.person("opencdp", "u1")["devices"]
    assert [d["id"] for d in devices] == ["dev-1", "dev-2"]
    assert devices[0]["fcmToken"] == "fcm-1"
    assert devices[0]["model"] == "Pixel 8"
    assert sandbox.stats()["opencdp"]["devices"] == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"deviceId": None}, "deviceId"),
    ({"platform": "windows"}, "platform"),
    ({"fcmToken": None}, "fcmToken"),
    ({"model": 8}, "model"),
    ({"attributes": "x"}, "attributes"),
])
def test_register_device_rejections(gateway: httpx.Client, change: dict[str, Any],
                                    field: str) -> None:
    r = gateway.post(DEVICE, json={**DEVICE_OK, **change})
    assert r.status_code == 400
    assert r.json()["field"] == field


def test_email_send_is_recorded_with_a_ulid(sandbox: Any, gateway: httpx.Client) -> None:
    r = gateway.post("/v1/send/email", json=EMAIL_OK, headers={"Idempotency-Key": ULID_A})
    assert r.status_code == 200
    answer = r.json()
    assert answer["status"] == "queued"
    assert len(answer["id"]) == 26
    (send,) = sandbox.sends("opencdp")
    assert send["id"] == answer["id"]
    assert send["channel"] == "email"
    assert send["identifiers"] == {"id": "u1"}
    assert send["idempotency_key"] == ULID_A
    assert send["body"]["message_data"] == {"first_name": "Ada"}


def test_raw_email_with_everything_valid(gateway: httpx.Client) -> None:
    body = {"to": "ada@example.com", "identifiers": {"email": "ada@example.com"},
            "from": "team@example.com", "subject": "Hi", "body": "<p>Hi</p>",
            "body_plain": "Hi", "cc": ["c@example.com"], "bcc": ["b@example.com"],
            "reply_to": "r@example.com", "send_at": 1_700_000_000,
            "attachments": {"a.txt": _b64(10), "b.txt": base64.urlsafe_b64encode(b"\xfb\xff")
                            .decode().rstrip("=")}}
    assert gateway.post("/v1/send/email", json=body).status_code == 200


@pytest.mark.parametrize(("change", "field", "status"), [
    ({"identifiers": {}}, "identifiers", 400),
    ({"identifiers": {"id": "u1", "email": "a@b.co"}}, "identifiers", 400),
    ({"identifiers": {"phone": "+14155550100"}}, "identifiers", 400),
    ({"identifiers": None}, "identifiers", 400),
    ({"to": None}, "to", 400),
    ({"to": "not-an-email"}, "to", 400),
    ({"transactional_message_id": None}, "body", 400),
    ({"from": "nope"}, "from", 400),
    ({"cc": "c@example.com"}, "cc", 400),
    ({"bcc": ["bad"]}, "bcc", 400),
    ({"send_at": 10**20}, "send_at", 400),
    ({"send_at": -1}, "send_at", 400),
    ({"body": "   "}, "body", 400),
    ({"headers": 5}, "headers", 400),
    ({"message_data": [1]}, "message_data", 400),
    ({"attachments": {f"f{i}.txt": _b64(3) for i in range(6)}}, "attachments", 400),
    ({"attachments": {"a.txt": "!!not base64!!"}}, "attachments", 400),
    ({"attachments": {"a.txt": "ab+/cd-_"}}, "attachments", 400),
    ({"attachments": {"../a.txt": _b64(3)}}, "attachments", 400),
    ({"attachments": {"a.txt": ""}}, "attachments", 400),
    ({"attachments": {"a.bin": _b64(2 * 1024 * 1024 + 1)}}, "attachments", 413),
    ({"attachments": ["a"]}, "attachments", 400),
    ({"transactional_message_id": [1]}, "transactional_message_id", 400),
])
def test_email_rejections(sandbox: Any, gateway: httpx.Client, change: dict[str, Any],
                          field: str, status: int) -> None:
    r = gateway.post("/v1/send/email", json={**EMAIL_OK, **change})
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert sandbox.sends("opencdp") == []


def test_raw_email_names_every_missing_field(gateway: httpx.Client) -> None:
    r = gateway.post("/v1/send/email", json={"to": "a@example.com", "identifiers": {"id": "1"}})
    assert r.status_code == 400
    message = r.json()["message"]
    assert message.startswith("When not using a template")
    assert all(f"{k} is required" in message for k in ("body", "subject", "from"))


def test_push_and_sms(sandbox: Any, gateway: httpx.Client) -> None:
    ids = {"identifiers": {"cdp_id": "c1"}}
    assert gateway.post("/v1/send/push", json={**ids, "transactional_message_id": "P",
                                               "title": "t", "body": "b"}).status_code == 200
    assert gateway.post("/v1/send/push", json=ids).status_code == 400
    sms = {**ids, "to": "+2348000000000", "from": "+15550001111", "body": "hi"}
    assert gateway.post("/v1/send/sms", json=sms).status_code == 200
    bad_phone = gateway.post("/v1/send/sms", json={**sms, "to": "0800-CALL"})
    assert bad_phone.status_code == 400
    assert "international format" in bad_phone.json()["message"]
    no_body = gateway.post("/v1/send/sms", json={**ids, "to": "+2348000000000"})
    assert no_body.json()["field"] == "body"
    assert [s["channel"] for s in sandbox.sends("opencdp")] == ["push", "sms"]


def test_whatsapp(sandbox: Any, gateway: httpx.Client) -> None:
    ok = {"identifiers": {"id": "u1"}, "transactional_message_id": "ORDER",
          "to": "+14155551234", "message_data": {"n": "1"},
          "template_variables": {"header": {"1": "x"}, "body": {"1": "a", "2": "b"}}}
    assert gateway.post("/v1/send/whatsapp", json=ok).status_code == 200
    cases = [
        ({**ok, "subject": "x"}, "subject"),
        ({**ok, "transactional_message_id": 5}, "transactional_message_id"),
        ({**ok, "to": "0800"}, "to"),
        ({**ok, "template_variables": {"footer": {"1": "x"}}}, "template_variables"),
        ({**ok, "template_variables": {"button": {"a": "x"}}}, "template_variables.button"),
    ]
    for body, field in cases:
        r = gateway.post("/v1/send/whatsapp", json=body)
        assert (r.status_code, r.json()["field"]) == (400, field)
    assert "positional slot" in gateway.post("/v1/send/whatsapp", json=cases[-1][0]
                                             ).json()["message"]
    assert len(sandbox.sends("opencdp")) == 1


def test_unknown_paths_and_methods(gateway: httpx.Client) -> None:
    assert gateway.post("/v1/persons/update", json={"identifier": "u"}).status_code == 404
    assert gateway.get("/v1/persons/identify").status_code == 404
    assert gateway.put(IDENTIFY, json={}).status_code == 404
    assert gateway.post("/v1/send/fax", json={}).status_code == 404


def test_rejections_are_counted_by_reason(sandbox: Any, gateway: httpx.Client) -> None:
    gateway.post(IDENTIFY, json={"identifier": ""})
    gateway.post(IDENTIFY, json={"identifier": "a@b.co"})
    gateway.post(TRACK, json={"identifier": "u"})
    stats = sandbox.stats()["opencdp"]
    assert stats["rejected"] == {"invalid_identifier": 2, "missing_field": 1}
    assert stats["4xx"] == 3
    assert stats["responses"] == {"400": 3}
