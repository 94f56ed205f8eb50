"""Contract: Codematic's ``cdp-python-sdk`` pointed at the relay stores what it stores when
pointed at the gateway itself.

Two sandboxes: the SDK writes to ``direct`` as it would to the real gateway, and to a relay
that delivers into ``relayed`` with dual-write on. The stored people, events, devices and
sends of both sandboxes' OpenCDP services are then compared; ``relayed``'s Customer.io service
must hold the same people, attributes and events as well. Calls are made in phases with the
relay's queue flushed between them, because the relay (like the SDK client) delivers messages
concurrently and does not promise their order.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cdp_client import CDPClient, CDPConfig
from cdp_client.models import (
    DeviceRegistrationParameters,
    EmailPayload,
    Identifiers,
    PushPayload,
    SmsPayload,
    WhatsAppPayload,
)

from opencdp import CustomerIO
from opencdp.config import ClientConfig, RetryConfig
from opencdp.sandbox import Sandbox
from opencdp.server import ServerConfig, create_app
from support.waiting import wait_for

RELAY_KEY = "relay-contract-key"


@pytest.fixture
def direct() -> Iterator[Sandbox]:
    with Sandbox(port=0) as sandbox:
        yield sandbox


@pytest.fixture
def relayed() -> Iterator[Sandbox]:
    with Sandbox(port=0) as sandbox:
        yield sandbox


class _Relay:
    """The relay app under uvicorn in a thread of this process, on a port chosen by the OS."""

    def __init__(self, config: ServerConfig) -> None:
        self.app = create_app(config)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, lifespan="on", access_log=False,
                                                    log_level="warning", ws="none"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> _Relay:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 20)
        assert self.server.started, "relay did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()

    def flush(self) -> None:
        client = self.app.state.relay.client
        assert client.flush(10), client.health()


@pytest.fixture
def relay(relayed: Sandbox, tmp_path: Path) -> Iterator[_Relay]:
    client = ClientConfig(
        cdp_api_key="cdp-test-key", cdp_endpoint=relayed.opencdp_url, cdp_fallback_endpoints=[],
        send_to_customer_io=True,
        customer_io=CustomerIO("sandbox-site", "sandbox-track-key", app_api_key="sandbox-app-key",
                               track_url=relayed.track_url, app_url=relayed.app_url),
        retry=RetryConfig(base_delay=0.01, max_delay=0.05), timeout=5.0,
    )
    config = ServerConfig(api_keys=[RELAY_KEY], client=client, port=0,
                          queue=f"sqlite:///{tmp_path / 'relay.db'}")
    with _Relay(config) as running:
        yield running


def _sdk(api_key: str, endpoint: str) -> CDPClient:
    return CDPClient(CDPConfig(cdp_api_key=api_key, cdp_endpoint=endpoint,
                               cdp_fallback_endpoints=[], fail_on_exception=True,
                               timeout_ms=5000))


async def _people(sdk: CDPClient) -> None:
    await sdk.identify("u-ada", {"first_name": "Ada", "plan": "pro", "email": "ada@example.com",
                                 "score": 9.5, "tags": ["a", "b"], "address": {"city": "London"},
                                 "active": True, "nickname": None})
    await sdk.identify("u-bob", {"plan": "free"})
    await sdk.identify(" u-cy ")


async def _activity(sdk: CDPClient) -> None:
    await sdk.identify("u-ada", {"plan": "team"})
    await sdk.track("u-ada", "purchase", {"amount": 99.9, "items": [{"sku": "x", "qty": 2}]})
    await sdk.track("u-ada", "page_viewed")
    await sdk.track("u-bob", "signed_up", {"source": "ads"})
    await sdk.register_device("u-ada", DeviceRegistrationParameters(
        deviceId="ada-phone", platform="android", fcmToken="fcm-ada"))
    await sdk.register_device("u-bob", DeviceRegistrationParameters(
        deviceId="bob-phone", platform="ios", fcmToken="fcm-bob", apnToken="apn-bob",
        name="Bob's phone", osVersion="17.1", model="iPhone 15", appVersion="2.0.1",
        last_active_at="2026-01-01T00:00:00Z", attributes={"beta": True}))


async def _sends(sdk: CDPClient) -> dict[str, Any] | None:
    await sdk.send_email(EmailPayload(to="ada@example.com", identifiers=Identifiers(id="u-ada"),
                                      transactional_message_id="WELCOME",
                                      message_data={"first_name": "Ada"}))
    await sdk.send_email(EmailPayload(to="bob@example.com", identifiers=Identifiers(id="u-bob"),
                                      **{"from": "shop@example.com"}, subject="Hi",
                                      body="<p>Hi</p>", body_plain="Hi",
                                      attachments={"a.txt": "aGVsbG8="}))
    await sdk.send_push(PushPayload(identifiers=Identifiers(id="u-ada"),
                                    transactional_message_id="PUSH_1", message_data={"n": 1}))
    await sdk.send_sms(SmsPayload(identifiers=Identifiers(id="u-bob"),
                                  transactional_message_id="SMS_1", to="+14155551234"))
    return await sdk.send_whatsapp(WhatsAppPayload(
        identifiers=Identifiers(id="u-bob"), transactional_message_id="ORDER_WHATSAPP",
        to="+14155551234", template_variables={"body": {"1": "Bob"}}))


def _stored(person: dict[str, Any]) -> dict[str, Any]:
    """What a person holds, without the ids and receive times each server assigns."""
    return {
        "id": person["id"],
        "email": person["email"],
        "attributes": person["attributes"],
        "events": sorted(((e["name"], e["data"]) for e in person["events"]), key=repr),
        "devices": sorted(person["devices"], key=lambda d: str(d["id"])),
        "suppressed": person["suppressed"],
    }


def _everyone(sandbox: Sandbox, service: str) -> list[dict[str, Any]]:
    return sorted((_stored(p) for p in sandbox.people(service)), key=lambda p: str(p["id"]))


def test_the_sdk_stores_the_same_data_through_the_relay(
    direct: Sandbox, relayed: Sandbox, relay: _Relay
) -> None:
    to_gateway = _sdk("cdp-test-key", direct.opencdp_url)
    to_relay = _sdk(RELAY_KEY, relay.url + "/gateway/data-gateway")

    async def run(sdk: CDPClient, flush: Any) -> tuple[bool, dict[str, Any] | None]:
        alive = await sdk.ping()
        for phase in (_people, _activity):
            await phase(sdk)
            await asyncio.to_thread(flush)
        receipt = await _sends(sdk)
        return alive, receipt

    direct_alive, direct_receipt = asyncio.run(run(to_gateway, lambda: None))
    relay_alive, relay_receipt = asyncio.run(run(to_relay, relay.flush))
    assert direct_alive and relay_alive

    expected = _everyone(direct, "opencdp")
    assert [p["id"] for p in expected] == ["u-ada", "u-bob", "u-cy"]
    assert _everyone(relayed, "opencdp") == expected

    def sends(sandbox: Sandbox) -> list[tuple[str, Any, Any]]:
        return [(s["channel"], s["identifiers"], s["body"]) for s in sandbox.sends("opencdp")]

    assert len(sends(direct)) == 5
    assert sends(relayed) == sends(direct)
    assert direct_receipt is not None and relay_receipt is not None
    assert set(relay_receipt) == set(direct_receipt) == {"id", "status"}

    # Dual-write: the relay also wrote people and events, never sends, to Customer.io.
    assert direct.people("customerio") == []
    mirrored = {p["id"]: p for p in _everyone(relayed, "customerio")}
    assert sorted(mirrored) == ["u-ada", "u-bob", "u-cy"]
    for person in expected:
        copy = mirrored[person["id"]]
        assert copy["attributes"] == person["attributes"]
        assert copy["events"] == person["events"]
    assert [d["id"] for d in mirrored["u-ada"]["devices"]] == ["fcm-ada"]
    assert [d["platform"] for d in mirrored["u-bob"]["devices"]] == ["ios"]
    assert relayed.sends("customerio") == []
