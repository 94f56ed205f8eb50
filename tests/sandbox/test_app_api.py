"""Customer.io App API transactional sends: answers, rules, auth mix-ups, rate limit."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from .conftest import APP_KEY, SITE, TRACK_KEY, Stilled

EMAIL = {"transactional_message_id": 44, "to": "ada@example.com",
         "identifiers": {"id": "user_123"}, "message_data": {"reset_url": "https://x.example"}}
PUSH = {"transactional_message_id": "pwdreset", "identifiers": {"id": 12345},
        "title": "Hi", "message": "There"}
SMS = {"transactional_message_id": "code", "identifiers": {"email": "a@b.co"},
       "to": "+15559876543", "from": "+15551234567"}


def test_email_answer_and_record(sandbox: Any, app_api: httpx.Client) -> None:
    before = int(time.time())
    r = app_api.post("/v1/send/email", json=EMAIL)
    assert r.status_code == 200
    answer = r.json()
    assert set(answer) == {"delivery_id", "queued_at"}
    assert before <= answer["queued_at"] <= int(time.time())
    (send,) = sandbox.sends("customerio")
    assert send["delivery_id"] == answer["delivery_id"]
    assert (send["channel"], send["identifiers"]) == ("email", {"id": "user_123"})
    assert send["body"]["message_data"] == EMAIL["message_data"]
    assert sandbox.stats()["customerio"]["sends"] == 1


def test_scheduled_send_echoes_send_at(app_api: httpx.Client) -> None:
    at = int(time.time()) + 3600
    assert app_api.post("/v1/send/email", json={**EMAIL, "send_at": at}).json()["send_at"] == at
    past = app_api.post("/v1/send/email", json={**EMAIL, "send_at": 1_600_000_000}).json()
    assert "send_at" not in past


def test_every_channel(sandbox: Any, app_api: httpx.Client) -> None:
    assert app_api.post("/v1/send/push", json=PUSH).status_code == 200
    assert app_api.post("/v1/send/push", json={**PUSH, "custom_device": {
        "token": "t", "platform": "ios", "last_used": 1_700_000_000}, "sound": "none",
        "custom_data": {"k": "v"}, "to": "last_used"}).status_code == 200
    assert app_api.post("/v1/send/sms", json=SMS).status_code == 200
    assert app_api.post("/v1/send/sms", json={**SMS, "to": "{{customer.phone}}"}
                        ).status_code == 200
    assert app_api.post("/v1/send/whatsapp", json={**SMS, "to": "+15559876543"}
                        ).status_code == 200
    assert app_api.post("/v1/send/email", json={
        "to": '"Ada" <ada@example.com>, bob@example.com', "from": "team@example.com",
        "subject": "Hi", "body": "<p>x</p>", "headers": {"X-Tag": "v"},
        "attachments": {"r.pdf": base64.b64encode(b"%PDF").decode()}}).status_code == 200
    assert [s["channel"] for s in sandbox.sends("customerio")] == [
        "push", "push", "sms", "sms", "whatsapp", "email"]
    assert len(sandbox.sends("customerio", id="12345")) == 2
    assert sandbox.sends("customerio", id="nobody") == []


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("email", {**EMAIL, "to": None}, 400, "to"),
    ("email", {**EMAIL, "to": "nope"}, 400, "email"),
    ("email", {**EMAIL, "identifiers": {"id": "1", "email": "a@b.co"}}, 400, "exactly one"),
    ("email", {**EMAIL, "identifiers": {"phone": "+1555"}}, 400, "exactly one"),
    ("email", {**EMAIL, "transactional_message_id": None}, 400, "body, subject, from"),
    ("email", {**EMAIL, "transactional_message_id": 4.5}, 400, "transactional_message_id"),
    ("email", {**EMAIL, "to": ",".join(f"u{i}@example.com" for i in range(16))}, 400, "15"),
    ("email", {**EMAIL, "cc": "a@example.com", "bcc": ",".join(
        f"b{i}@example.com" for i in range(14))}, 400, "15"),
    ("email", {**EMAIL, "send_at": 1_700_000_000_000}, 400, "90 days"),
    ("email", {**EMAIL, "send_at": int(time.time()) + 91 * 86400}, 400, "90 days"),
    ("email", {**EMAIL, "attachments": {"r.pdf": "***"}}, 400, "base64"),
    ("email", {**EMAIL, "attachments": {"receipt": "AAAA"}}, 400, "extension"),
    ("email", {**EMAIL, "attachments": {"r.pdf": 5}}, 400, "base64"),
    ("email", {**EMAIL, "attachments": "x"}, 400, "attachments"),
    ("email", {**EMAIL, "attachments": {"big.bin": base64.b64encode(
        b"x" * (2 * 1024 * 1024)).decode()}}, 413, "2 MB"),
    ("email", {**EMAIL, "tracked": "yes"}, 400, "tracked"),
    ("email", {**EMAIL, "subject": 5}, 400, "subject"),
    ("email", {**EMAIL, "headers": 5}, 400, "headers"),
    ("email", {**EMAIL, "message_data": "x"}, 400, "message_data"),
    ("email", {**EMAIL, "body": "x" * (1024 * 1024 + 1)}, 413, "1 MB"),
    ("push", {**PUSH, "transactional_message_id": None}, 400, "transactional_message_id"),
    ("push", {**PUSH, "identifiers": None}, 400, "identifiers"),
    ("push", {**PUSH, "sound": "loud"}, 400, "sound"),
    ("push", {**PUSH, "custom_device": {"token": "t", "platform": "web"}}, 400, "platform"),
    ("push", {**PUSH, "custom_device": {"platform": "ios"}}, 400, "token"),
    ("push", {**PUSH, "custom_data": [1]}, 400, "custom_data"),
    ("sms", {**SMS, "to": "5559876543"}, 400, "E.164"),
    ("sms", {**SMS, "to": None}, 400, "to"),
    ("whatsapp", {**SMS, "to": "nope"}, 400, "E.164"),
])
def test_send_rejections(sandbox: Any, app_api: httpx.Client, path: str, body: dict[str, Any],
                         status: int, needle: str) -> None:
    r = app_api.post(f"/v1/send/{path}", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["meta"]["error"]
    assert sandbox.sends("customerio") == []


def test_unknown_channel_and_method(app_api: httpx.Client) -> None:
    assert app_api.post("/v1/send/fax", json={}).status_code == 404
    wrong = app_api.get("/v1/send/email")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


@pytest.mark.parametrize(("headers", "needle"), [
    ({}, "missing Authorization"),
    ({"Authorization": "Bearer nope"}, "invalid App API key"),
    ({"Authorization": f"Bearer {TRACK_KEY}"}, "Track API key was sent to the App API"),
    ({"Authorization": "Basic " + base64.b64encode(f"{SITE}:{TRACK_KEY}".encode()).decode()},
     "Track API credentials"),
    ({"Authorization": APP_KEY}, "Bearer"),
])
def test_auth_failures(sandbox: Any, headers: dict[str, str], needle: str) -> None:
    with httpx.Client(base_url=sandbox.app_url, headers=headers) as c:
        r = c.post("/v1/send/email", json=EMAIL)
    assert r.status_code == 401
    assert needle in r.json()["meta"]["error"]
    assert APP_KEY not in r.text
    assert TRACK_KEY not in r.text
    assert sandbox.sends("customerio") == []


def test_track_key_mixup_is_counted_apart(sandbox: Any) -> None:
    with httpx.Client(base_url=sandbox.app_url,
                      headers={"Authorization": f"Bearer {TRACK_KEY}"}) as c:
        c.post("/v1/send/email", json=EMAIL)
    assert sandbox.stats()["customerio"]["rejected"] == {"wrong_key_type": 1}


def test_send_rate_limit_is_apart_from_track(stilled: Stilled) -> None:
    sandbox = stilled.sandbox
    sandbox.set_faults({"customerio": {"rate_limit_rps": 3}})
    with stilled.client("app") as app_api, stilled.client("track") as track:
        responses = [app_api.post("/v1/send/sms", json=SMS) for _ in range(4)]
        track_status = track.put("/api/v1/customers/1", json={}).status_code
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert track_status == 200
    assert int(responses[3].headers["retry-after"]) >= 1
    assert "rate limit" in responses[3].json()["meta"]["error"]
    assert len(sandbox.sends("customerio")) == 3
