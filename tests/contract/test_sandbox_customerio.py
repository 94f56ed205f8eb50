"""The official ``customerio`` client (Track and App API) against the sandbox.

The client only speaks https, so the sandbox runs with ``tls=True`` and the client's requests
session trusts the sandbox's throw-away CA.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from customerio import (
    APIClient,
    CustomerIO,
    CustomerIOException,
    Regions,
    SendEmailRequest,
    SendPushRequest,
    SendSMSRequest,
)
from customerio.constants import EMAIL, ID

from opencdp.sandbox import Sandbox

SITE, TRACK_KEY, APP_KEY = "sandbox-site", "sandbox-track-key", "sandbox-app-key"
ULID = "01HZX3Q4T0V5B8K2M7N9P6R1S3"


@pytest.fixture(scope="module")
def _tls_sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, tls=True) as sb:
        yield sb


@pytest.fixture
def sb(_tls_sandbox: Sandbox) -> Sandbox:
    _tls_sandbox.reset()
    return _tls_sandbox


def _trust(client: CustomerIO | APIClient, sb: Sandbox) -> None:
    # The environment may name a CA bundle (REQUESTS_CA_BUNDLE), which requests would prefer
    # over the session's own setting; loopback needs no proxy either.
    client.http.trust_env = False
    client.http.verify = sb.ca_file


def track_client(sb: Sandbox, site: str = SITE, key: str = TRACK_KEY) -> CustomerIO:
    cio = CustomerIO(site, key, host="127.0.0.1", port=urlsplit(sb.track_url).port,
                     region=Regions.US, retries=0, timeout=10)
    _trust(cio, sb)
    return cio


def app_client(sb: Sandbox, key: str = APP_KEY) -> APIClient:
    api = APIClient(key, url=sb.app_url, region=Regions.US, retries=0, timeout=10)
    _trust(api, sb)
    return api


def test_identify_track_device_and_inspection(sb: Sandbox) -> None:
    cio = track_client(sb)
    cio.identify(id="42", email="ada@example.com", plan="pro", created_at=1_700_000_000)
    cio.track(customer_id="42", name="purchase", data={"price": 23.45}, id=ULID,
              timestamp=1_700_000_000)
    cio.track(customer_id="42", name="purchase", data={"price": 23.45}, id=ULID)  # a retry
    cio.pageview(customer_id="42", page="/pricing", referrer="https://example.com")
    cio.backfill(customer_id="42", name="signed_up", timestamp=1_600_000_000)
    cio.add_device(customer_id="42", device_id="tok-1", platform="ios",
                   last_used=1_700_000_000)
    cio.add_device(customer_id="42", device_id="tok-2", platform="android")
    cio.delete_device(customer_id="42", device_id="tok-2")
    cio.track_anonymous(anonymous_id="anon-1", name="watched", data={"video": "intro"})
    person = sb.person("customerio", "42")
    assert person is not None
    assert person["attributes"] == {"email": "ada@example.com", "plan": "pro",
                                    "created_at": 1_700_000_000}
    assert [(e["name"], e["type"]) for e in person["events"]] == [
        ("purchase", "event"), ("/pricing", "page"), ("signed_up", "event")]
    assert person["events"][0]["id"] == ULID
    assert [d["id"] for d in person["devices"]] == ["tok-1"]
    assert sb.stats()["customerio"]["duplicates"] == 1
    assert sb.anonymous_events()[0]["anonymous_id"] == "anon-1"
    cio.close()


def test_suppress_delete_merge_batch(sb: Sandbox) -> None:
    cio = track_client(sb)
    cio.identify(id="1", plan="pro")
    cio.identify(id="2", email="two@example.com", seats=3)
    cio.suppress(customer_id="1")
    assert sb.person("customerio", "1")["suppressed"] is True
    cio.unsuppress(customer_id="1")
    assert sb.person("customerio", "1") is None, "unsuppress does not bring the profile back"
    cio.identify(id="1", plan="pro")
    cio.merge_customers(primary_id_type=ID, primary_id="1", secondary_id_type=EMAIL,
                        secondary_id="two@example.com")
    assert sb.person("customerio", "1")["attributes"] == {"plan": "pro",
                                                          "email": "two@example.com",
                                                          "seats": 3}
    assert sb.person("customerio", "2") is None
    cio.batch([
        {"type": "person", "identifiers": {"id": "3"}, "action": "identify",
         "attributes": {"plan": "team"}},
        {"type": "person", "identifiers": {"id": "3"}, "action": "event", "name": "login",
         "id": ULID},
    ])
    assert sb.person("customerio", "3")["events"][0]["name"] == "login"
    cio.delete(customer_id="3")
    assert sb.person("customerio", "3") is None
    cio.close()


def test_millisecond_timestamps_are_accepted_unless_strict(sb: Sandbox) -> None:
    """Customer.io takes a millisecond timestamp (and reads a far-future date); only the
    strict sandbox refuses it, naming the mistake."""
    cio = track_client(sb)
    cio.track(customer_id="1", name="x", timestamp=1_700_000_000_000)
    assert sb.person("customerio", "1")["events"][0]["timestamp"] == 1_700_000_000_000
    cio.close()
    with Sandbox(port=0, tls=True, strict=True) as strict:
        cio = track_client(strict)
        with pytest.raises(CustomerIOException, match=r"^400: .*milliseconds"):
            cio.track(customer_id="1", name="x", timestamp=1_700_000_000_000)
        cio.close()


def test_track_client_fails_on_bad_input_like_the_real_service(sb: Sandbox) -> None:
    cio = track_client(sb)
    with pytest.raises(CustomerIOException, match=r"^400: .*the body has 301 attributes"):
        cio.identify(id="1", **{f"a{i}": i for i in range(301)})
    partial = cio.batch([{"type": "person", "identifiers": {"id": "1"}, "action": "fly"},
                         {"type": "person", "identifiers": {"id": "2"}, "action": "identify"}])
    assert partial.status_code == 207  # a 2xx, so the client does not raise
    assert [e["batch_index"] for e in partial.json()["errors"]] == [0]
    assert sb.person("customerio", "2") is not None
    cio.close()


@pytest.mark.parametrize(("site", "key", "needle"), [
    (SITE, "wrong-key", "wrong Track API key"),
    ("other-site", TRACK_KEY, "unknown site id"),
    (SITE, APP_KEY, "App API key"),
])
def test_track_client_with_wrong_keys_gets_401(sb: Sandbox, site: str, key: str,
                                               needle: str) -> None:
    cio = track_client(sb, site, key)
    with pytest.raises(CustomerIOException, match=r"^401: ") as info:
        cio.identify(id="1", plan="pro")
    assert needle in str(info.value)
    with pytest.raises(CustomerIOException, match=r"^401: "):
        cio.batch([{"type": "person", "identifiers": {"id": "1"}, "action": "identify"}])
    assert sb.person("customerio", "1") is None
    cio.close()


def test_transactional_sends(sb: Sandbox) -> None:
    api = app_client(sb)
    email = SendEmailRequest(transactional_message_id=44, to="ada@example.com",
                             identifiers={"id": "42"}, message_data={"name": "Ada"})
    email.attach("receipt.pdf", b"%PDF-1.4 ...")
    first: dict[str, Any] = api.send_email(email)
    assert set(first) >= {"delivery_id", "queued_at"}
    push = api.send_push(SendPushRequest(transactional_message_id="welcome",
                                         identifiers={"id": "42"}, title="Hi",
                                         message="There",
                                         device={"token": "tok", "platform": "ios"}))
    sms = api.send_sms(SendSMSRequest(transactional_message_id="code",
                                      identifiers={"email": "ada@example.com"},
                                      to="+15559876543"))
    sends = sb.sends("customerio")
    assert [s["channel"] for s in sends] == ["email", "push", "sms"]
    assert [s["delivery_id"] for s in sends] == [first["delivery_id"], push["delivery_id"],
                                                 sms["delivery_id"]]
    assert base64.b64decode(sends[0]["body"]["attachments"]["receipt.pdf"]) == b"%PDF-1.4 ..."
    assert sends[1]["body"]["custom_device"] == {"token": "tok", "platform": "ios"}
    api.close()


def test_app_client_refusals(sb: Sandbox) -> None:
    api = app_client(sb)
    with pytest.raises(CustomerIOException, match=r"^400: "):
        api.send_sms(SendSMSRequest(transactional_message_id="code", identifiers={"id": "1"},
                                    to="555-0100"))
    api.close()
    for key, needle in ((TRACK_KEY, "Track API key"), ("nope", "invalid App API key")):
        bad = app_client(sb, key)
        with pytest.raises(CustomerIOException, match=r"^401: ") as info:
            bad.send_email(SendEmailRequest(transactional_message_id=1, to="a@example.com",
                                            identifiers={"id": "1"}))
        assert needle in str(info.value)
        bad.close()
    assert sb.sends("customerio") == []
