"""The admin API: inspection, the OpenCDP/Customer.io diff, and signed webhooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from opencdp.errors import OpenCDPError
from opencdp.webhooks import sign_payload, verify_signature
from support.servers import refused_port

from .conftest import ULID_A


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204 if b"ok" in body else 500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_index_lists_urls(sandbox: Any) -> None:
    index = httpx.get(sandbox.admin_url).json()
    assert index["urls"] == sandbox.urls
    assert index["site_id"] == "sandbox-site"


def test_unknown_admin_routes_and_services(sandbox: Any) -> None:
    assert httpx.get(f"{sandbox.admin_url}/people/segment").status_code == 404
    assert httpx.get(f"{sandbox.admin_url}/nothing").status_code == 404
    assert httpx.get(f"{sandbox.admin_url}/stats/more").status_code == 404
    assert httpx.get(f"{sandbox.track_url}/elsewhere").status_code == 404
    with pytest.raises(OpenCDPError):
        sandbox.people("segment")


def test_stats_count_requests_statuses_and_reasons(sandbox: Any, track: httpx.Client,
                                                   gateway: httpx.Client) -> None:
    track.put("/api/v1/customers/1", json={})
    track.post("/api/v1/customers/1/events", json={"name": "x", "id": ULID_A})
    track.post("/api/v1/customers/1/events", json={"name": "x", "id": ULID_A})
    track.post("/api/v1/customers/1/events", json={})
    gateway.post("/v1/persons/track", json={"identifier": "1", "eventName": "y"})
    stats = sandbox.stats()
    cio = stats["customerio"]
    assert (cio["requests"], cio["accepted"], cio["people"], cio["events"],
            cio["duplicates"]) == (4, 2, 1, 1, 1)
    assert cio["rejected"] == {"missing_field": 1}
    assert (cio["2xx"], cio["4xx"], cio["5xx"]) == (3, 1, 0)
    assert stats["opencdp"]["events"] == 1
    assert httpx.get(f"{sandbox.admin_url}/stats").json()["customerio"]["requests"] == 4


def test_diff_in_sync_and_out_of_sync(sandbox: Any, track: httpx.Client,
                                      gateway: httpx.Client) -> None:
    gateway.post("/v1/persons/identify", json={"identifier": "u1",
                                               "properties": {"plan": "pro"}})
    gateway.post("/v1/persons/track", json={"identifier": "u1", "eventName": "buy"},
                 headers={"Idempotency-Key": ULID_A})
    gateway.post("/v1/persons/registerDevice", json={
        "identifier": "u1", "deviceId": "d1", "platform": "ios", "fcmToken": "tok"})
    track.put("/api/v1/customers/u1", json={"plan": "pro"})
    track.post("/api/v1/customers/u1/events", json={"name": "buy", "id": ULID_A})
    track.put("/api/v1/customers/u1/devices", json={"device": {"id": "tok", "platform": "ios"}})
    diff = sandbox.diff("u1")
    assert diff["in_sync"] is True
    assert diff["events"]["common"] == 1
    track.put("/api/v1/customers/u1", json={"plan": "free", "extra": 1})
    track.put("/api/v1/customers/u1/devices", json={"device": {"id": "t2",
                                                               "platform": "ios"}})
    gateway.post("/v1/persons/track", json={"identifier": "u1", "eventName": "only-cdp"})
    diff = sandbox.diff("u1")
    assert diff["in_sync"] is False
    assert diff["attributes"]["different"] == {"plan": {"opencdp": "pro", "customerio": "free"}}
    assert diff["attributes"]["only_customerio"] == {"extra": 1}
    assert [e["name"] for e in diff["events"]["only_opencdp"]] == ["only-cdp"]
    assert diff["devices"] == {"only_opencdp": [], "only_customerio": ["t2"]}
    missing = sandbox.diff("nobody")
    assert (missing["opencdp"], missing["customerio"], missing["in_sync"]) == (None, None, False)


def test_people_listing(sandbox: Any, track: httpx.Client) -> None:
    track.put("/api/v1/customers/1", json={"a": 1})
    track.put("/api/v1/customers/2", json={"a": 2})
    people = sandbox.people("customerio")
    assert [(p["id"], p["attributes"]) for p in people] == [("1", {"a": 1}), ("2", {"a": 2})]
    assert sandbox.people("opencdp") == []


def test_webhook_is_signed_like_customer_io(sandbox: Any, receiver: Any) -> None:
    url, received = receiver
    event = {"event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": "email",
             "metric": "delivered", "timestamp": 1_700_000_000,
             "data": {"delivery_id": "d1", "identifiers": {"id": "42"}, "note": "ok"}}
    result = sandbox.send_webhook(url, "signing-key", event, timestamp=1_700_000_123)
    assert result["status"] == 204
    ((headers, body),) = received
    assert headers["x-cio-timestamp"] == "1700000123"
    assert headers["x-cio-signature"] == sign_payload("signing-key", "1700000123", body)
    assert verify_signature("signing-key", "1700000123", body, headers["x-cio-signature"],
                            tolerance=None)
    assert httpx.Response(200, content=body).json() == event


def test_webhook_reports_receiver_status_and_default_timestamp(sandbox: Any,
                                                              receiver: Any) -> None:
    url, received = receiver
    result = sandbox.send_webhook(url, "k", {"metric": "bounced"})
    assert result["status"] == 500
    assert int(received[0][0]["x-cio-timestamp"]) > 1_700_000_000


@pytest.mark.parametrize("body", [
    {"url": "http://example.com/hook", "signing_key": "k", "event": {}},
    {"url": "http://10.0.0.1/hook", "signing_key": "k", "event": {}},
    {"url": "ftp://127.0.0.1/hook", "signing_key": "k", "event": {}},
    {"url": "http://127.0.0.1:1/hook", "signing_key": "", "event": {}},
    {"url": "http://127.0.0.1:1/hook", "signing_key": "k", "event": []},
    {"url": "http://127.0.0.1:1/hook", "signing_key": "k", "event": {}, "timestamp": 1.5},
    [1],
])
def test_webhook_refuses_non_loopback_and_bad_bodies(sandbox: Any, body: Any) -> None:
    r = httpx.post(f"{sandbox.admin_url}/webhooks/send", json=body)
    assert r.status_code == 400


def test_webhook_to_a_closed_port_is_502(sandbox: Any) -> None:

    port = refused_port()
    r = httpx.post(f"{sandbox.admin_url}/webhooks/send",
                   json={"url": f"http://localhost:{port}/h", "signing_key": "k", "event": {}})
    assert r.status_code == 502
    assert r.json()["reason"] == "delivery_failed"
