"""Codematic's ``cdp-python-sdk`` (``cdp_client``) against the sandbox's gateway emulation.

Fallback endpoints are always set to ``[]``: the SDK's defaults are public hosts, and a failed
call must never fail over off the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from cdp_client import (
    CDPClient,
    CDPConfig,
    CDPError,
    DeviceRegistrationParameters,
    EmailPayload,
    Identifiers,
    PushPayload,
    SmsPayload,
    WhatsAppPayload,
)

from opencdp.sandbox import Sandbox


@pytest.fixture(scope="module")
def _gateway_sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0) as sb:
        yield sb


@pytest.fixture
def sb(_gateway_sandbox: Sandbox) -> Sandbox:
    _gateway_sandbox.reset()
    return _gateway_sandbox


def client(sb: Sandbox, key: str = "cdp-test-key", fail: bool = True) -> CDPClient:
    return CDPClient(CDPConfig(cdp_api_key=key, cdp_endpoint=sb.opencdp_url,
                               cdp_fallback_endpoints=[], fail_on_exception=fail,
                               timeout_ms=5000))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_person_calls_are_stored(sb: Sandbox) -> None:
    cdp = client(sb)
    assert run(cdp.ping()) is True
    run(cdp.identify("user_123", {"plan": "pro", "first_name": "Ada"}))
    run(cdp.track("user_123", "purchase", {"amount": 99.9}))
    run(cdp.register_device("user_123", DeviceRegistrationParameters(
        deviceId="device-abc", platform="android", fcmToken="fcm-token-xyz", model="Pixel 8",
        attributes={"k": "v"})))
    person = sb.person("opencdp", "user_123")
    assert person is not None
    assert person["attributes"] == {"plan": "pro", "first_name": "Ada"}
    assert [(e["name"], e["data"]) for e in person["events"]] == [("purchase", {"amount": 99.9})]
    (device,) = person["devices"]
    assert (device["id"], device["fcmToken"], device["platform"]) == (
        "device-abc", "fcm-token-xyz", "android")
    assert sb.stats()["opencdp"]["requests"] == 4


def test_sends_are_recorded(sb: Sandbox) -> None:
    cdp = client(sb)
    email = EmailPayload(to="ada@example.com", identifiers=Identifiers(id="user_123"),
                         transactional_message_id="WELCOME", message_data={"name": "Ada"})
    email.attach("receipt.txt", b"thanks")
    run(cdp.send_email(email))
    run(cdp.send_push(PushPayload(identifiers=Identifiers(id="user_123"),
                                  transactional_message_id="PUSH", title="Hi", body="x")))
    run(cdp.send_sms(SmsPayload(identifiers=Identifiers(cdp_id="c1"),
                                transactional_message_id="SMS", to="+2348000000000")))
    record = run(cdp.send_whatsapp(WhatsAppPayload(
        identifiers=Identifiers(id="user_123"), transactional_message_id="ORDER",
        to="+14155551234", template_variables={"body": {"1": "Ada"}})))
    sends = sb.sends("opencdp")
    assert [s["channel"] for s in sends] == ["email", "push", "sms", "whatsapp"]
    assert record == {"id": sends[3]["id"], "status": "queued"}
    assert sends[0]["body"]["attachments"] == {"receipt.txt": "dGhhbmtz"}
    assert sends[2]["identifiers"] == {"cdp_id": "c1"}


def test_wrong_key_fails_with_401(sb: Sandbox) -> None:
    bad = client(sb, key="wrong-key")
    with pytest.raises(CDPError) as info:
        run(bad.identify("user_123", {"plan": "pro"}))
    assert info.value.status_code == 401
    with pytest.raises(CDPError) as send_info:
        run(bad.send_email(EmailPayload(to="a@example.com", identifiers=Identifiers(id="u"),
                                        transactional_message_id="W")))
    assert send_info.value.status_code == 401
    assert run(client(sb, key="wrong-key", fail=False).ping()) is False
    assert sb.person("opencdp", "user_123") is None
    assert sb.stats()["opencdp"]["rejected"] == {"unauthorized": 3}


def test_gateway_refusals_surface_as_sdk_errors(sb: Sandbox) -> None:
    cdp = client(sb)
    with pytest.raises(CDPError) as info:
        run(cdp.send_email(EmailPayload(to="not-an-email", identifiers=Identifiers(id="u"),
                                        transactional_message_id="W")))
    assert info.value.status_code == 400
    sb.set_faults({"opencdp": {"error_rate": 1.0, "statuses": [503]}})
    with pytest.raises(CDPError) as outage:
        run(cdp.track("user_123", "purchase"))
    assert outage.value.status_code == 503
    assert sb.person("opencdp", "user_123") is None
    assert sb.stats()["opencdp"]["faults"] == {"error_503": 1}
