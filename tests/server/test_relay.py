"""The relay over real loopback HTTP, delivering into the sandbox through a SQLite outbox."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from opencdp.config import RetryConfig
from opencdp.errors import OpenCDPError
from opencdp.server import RelayServer, auth
from opencdp.webhooks import sign_payload
from support.servers import wait_until

from .conftest import StartRelay
from .support import OTHER_KEY, RELAY_KEY, SIGNING_KEY, server_config

EMAIL = {"to": "ada@example.com", "identifiers": {"id": "u1"},
         "transactional_message_id": "WELCOME", "message_data": {"first_name": "Ada"}}


def _client(relay: RelayServer) -> Any:
    client = relay.relay.client
    assert client is not None
    return client


def _http(relay: RelayServer, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=str(relay.urls["gateway"]), trust_env=False, timeout=10.0,
                        headers=headers)


# --- person calls ------------------------------------------------------------------------

def test_person_calls_are_accepted_at_once_and_delivered_to_both(
    relay: RelayServer, gateway: httpx.Client, sandbox: Any
) -> None:
    calls = [
        ("/v1/persons/identify", {"identifier": "u1", "properties": {"plan": "pro"}}),
        ("/v1/persons/track", {"identifier": "u1", "eventName": "purchase",
                               "properties": {"amount": 99.9}}),
        ("/v1/persons/registerDevice", {"identifier": "u1", "deviceId": "dev-1",
                                        "platform": "android", "fcmToken": "fcm-1"}),
    ]
    for path, body in calls:
        answer = gateway.post(path, json=body)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"status": "accepted"}
    assert _client(relay).flush(10)

    cdp = sandbox.person("opencdp", "u1")
    cio = sandbox.person("customerio", "u1")
    assert cdp["attributes"] == cio["attributes"] == {"plan": "pro"}
    assert [(e["name"], e["data"]) for e in cdp["events"]] == [("purchase", {"amount": 99.9})]
    assert [(e["name"], e["data"]) for e in cio["events"]] == [("purchase", {"amount": 99.9})]
    assert cdp["devices"] == [{"deviceId": "dev-1", "platform": "android", "fcmToken": "fcm-1",
                               "id": "dev-1"}]
    assert [d["id"] for d in cio["devices"]] == ["fcm-1"]


def test_a_ulid_idempotency_key_becomes_the_event_id(
    relay: RelayServer, gateway: httpx.Client, sandbox: Any
) -> None:
    key = "01HZX3Q4T0V5B8K2M7N9P6R1S3"
    body = {"identifier": "u2", "eventName": "signed_up"}
    for _ in range(2):  # a caller's retry
        assert gateway.post("/v1/persons/track", json=body,
                            headers={"Idempotency-Key": key}).status_code == 202
    assert gateway.post("/v1/persons/track", json=body,
                        headers={"Idempotency-Key": "not-a-ulid"}).status_code == 202
    assert _client(relay).flush(10)
    events = sandbox.person("customerio", "u2")["events"]
    assert len(events) == 2
    assert key in [e["id"] for e in events]


def test_ping_answers_for_the_relay(gateway: httpx.Client) -> None:
    answer = gateway.get("/v1/health/ping")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_unknown_paths_and_methods_answer_json(gateway: httpx.Client) -> None:
    missing = gateway.post("/v1/persons/update", json={"identifier": "u1"})
    assert missing.status_code == 404
    assert "Cannot POST" in missing.json()["message"]
    wrong = gateway.get("/v1/persons/identify")
    assert wrong.status_code == 405
    assert "message" in wrong.json()


# --- authentication ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing API key: send it raw in the Authorization header"),
        ({"Authorization": "wrong-key"}, "Invalid API key"),
        ({"Authorization": f"Bearer {RELAY_KEY}"},
         "Invalid API key: send the raw key in Authorization, without 'Bearer '"),
        ({"Authorization": "cdp-test-key"}, "Invalid API key"),  # the upstream key is not one
    ],
)
def test_missing_or_wrong_keys_are_refused_before_anything_is_read(
    relay: RelayServer, sandbox: Any, headers: dict[str, str], message: str
) -> None:
    with _http(relay, **headers) as http:
        for method, path, body in (
            ("GET", "/v1/health/ping", None),
            ("POST", "/v1/persons/identify", {"identifier": "u1"}),
            ("POST", "/v1/send/email", EMAIL),
        ):
            answer = http.request(method, path, json=body)
            assert answer.status_code == 401
            assert answer.json() == {"message": message}
    assert _client(relay).flush(5)
    assert sandbox.stats()["opencdp"]["requests"] == 0


def test_every_key_is_compared_in_constant_time(
    relay: RelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = auth.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth, "compare_digest", spy)
    with _http(relay, Authorization=RELAY_KEY) as http:
        assert http.get("/v1/health/ping").status_code == 200
    # The first key matched, and the second was compared all the same.
    assert seen == [(RELAY_KEY.encode(), RELAY_KEY.encode()),
                    (RELAY_KEY.encode(), OTHER_KEY.encode())]
    seen.clear()
    with _http(relay, Authorization=OTHER_KEY) as http:
        assert http.get("/v1/health/ping").status_code == 200
    assert len(seen) == 2


# --- body limit and validation -------------------------------------------------------------

def test_bodies_over_the_limit_are_refused(start_relay: StartRelay, sandbox: Any) -> None:
    relay = start_relay(max_body_bytes=200)
    padding = "x" * 300
    with _http(relay, Authorization=RELAY_KEY) as http:
        declared = http.post("/v1/persons/identify",
                             json={"identifier": "u1", "properties": {"p": padding}})
        assert declared.status_code == 413
        assert declared.json() == {"message": "request body exceeds 200 bytes", "field": "body"}

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield b'{"identifier": "u1", "properties": {"p": "'
            for _ in range(10):
                yield b"x" * 50
            yield b'"}}'

        streamed = http.post("/v1/persons/identify", content=chunks())
        assert streamed.status_code == 413
        fits = orjson.dumps({"identifier": "u1", "properties": {"p": "x" * 100}})
        assert len(fits) <= 200
        assert http.post("/v1/persons/identify", content=fits).status_code == 202
        assert http.post("/v1/send/email",
                         json={**EMAIL, "message_data": {"p": padding}}).status_code == 413
    assert _client(relay).flush(10)
    assert sandbox.stats()["opencdp"]["sends"] == 0
    assert sandbox.stats()["opencdp"]["people"] == 1


@pytest.mark.parametrize(
    ("path", "body", "field", "needle"),
    [
        ("/v1/persons/identify", b"{not json", "body", "JSON"),
        ("/v1/persons/identify", b"[1, 2]", "body", "JSON object"),
        ("/v1/persons/identify", {"identifier": "ada@example.com"}, "identifier", "email"),
        ("/v1/persons/identify", {"identifier": "  "}, "identifier", ""),
        ("/v1/persons/identify", {"identifier": "u1", "properties": [1]}, "properties", ""),
        ("/v1/persons/track", {"identifier": "u1", "eventName": " "}, "eventName", ""),
        ("/v1/persons/track", {"eventName": "x"}, "identifier", ""),
        ("/v1/persons/registerDevice", {"identifier": "u1", "deviceId": "d1",
                                        "platform": "windows", "fcmToken": "t"},
         "platform", ""),
        ("/v1/persons/registerDevice", {"identifier": "u1", "platform": "ios",
                                        "fcmToken": "t"}, "deviceId", ""),
        ("/v1/send/email", {"identifiers": {"id": "u1"}, "transactional_message_id": "W"},
         "to", "to is required"),
        ("/v1/send/email", {**EMAIL, "identifiers": {"id": "u1", "email": "a@b.co"}},
         "identifiers", "exactly one"),
        ("/v1/send/push", {"identifiers": {"id": "u1"}}, "transactional_message_id", ""),
        ("/v1/send/sms", {"identifiers": {"id": "u1"}, "body": "hi", "to": "call me"}, "to",
         "international"),
        ("/v1/send/whatsapp", {"identifiers": {"id": "u1"}, "transactional_message_id": "T",
                               "subject": "no"}, "subject", ""),
    ],
)
def test_bad_bodies_get_400_naming_the_field(
    relay: RelayServer, gateway: httpx.Client, sandbox: Any, path: str,
    body: bytes | dict[str, Any], field: str, needle: str,
) -> None:
    if isinstance(body, bytes):
        answer = gateway.post(path, content=body)
    else:
        answer = gateway.post(path, json=body)
    assert answer.status_code == 400, answer.text
    payload = answer.json()
    assert payload["field"] == field
    assert needle in payload["message"]
    assert _client(relay).flush(5)
    stats = sandbox.stats()
    assert stats["opencdp"]["requests"] == stats["customerio"]["requests"] == 0


# --- transactional sends -------------------------------------------------------------------

def test_sends_are_forwarded_and_answered_with_the_gateways_answer(
    relay: RelayServer, gateway: httpx.Client, sandbox: Any
) -> None:
    answer = gateway.post("/v1/send/email", json=EMAIL)
    assert answer.status_code == 200
    sends = sandbox.sends("opencdp")
    assert answer.json() == {"id": sends[0]["id"], "status": "queued"}
    assert sends[0]["body"] == EMAIL
    assert sandbox.stats()["customerio"]["sends"] == 0  # never mirrored


def test_an_upstream_refusal_is_passed_through_and_not_retried(
    relay: RelayServer, gateway: httpx.Client, sandbox: Any
) -> None:
    sandbox.set_faults({"opencdp": {"error_rate": 1.0, "statuses": [503]}})
    answer = gateway.post("/v1/send/push", json={"identifiers": {"id": "u1"},
                                                 "transactional_message_id": "P1"})
    assert answer.status_code == 503
    assert answer.json() == {"message": "Service Unavailable"}
    assert answer.headers["retry-after"] == "1"
    assert sandbox.stats()["opencdp"]["requests"] == 1


def test_a_send_with_no_answer_is_504_and_reached_the_gateway_once(
    start_relay: StartRelay, sandbox: Any
) -> None:
    # A second host name for the same gateway: a resend on failover would be stored twice.
    fallback = sandbox.opencdp_url.replace("127.0.0.1", "localhost")
    relay = start_relay(client={"timeout": 0.5, "cdp_fallback_endpoints": [fallback]})
    assert len(_client(relay).config.cdp_hosts) == 2
    sandbox.set_faults({"opencdp": {"hang_rate": 1.0}})
    with _http(relay, Authorization=RELAY_KEY) as http:
        answer = http.post("/v1/send/email", json=EMAIL)
    assert answer.status_code in (502, 504)
    assert "may have been received" in answer.json()["message"]
    sandbox.clear_faults()
    assert len(sandbox.sends("opencdp")) == 1
    assert sandbox.stats()["opencdp"]["faults"] == {"hang_after_store": 1}


def test_a_send_that_reached_no_host_is_523_so_sdks_may_fail_over(
    start_relay: StartRelay, gateway: httpx.Client, sandbox: Any, unused_port: int
) -> None:
    relay = start_relay(client={"cdp_endpoint": f"http://127.0.0.1:{unused_port}/gateway"})
    with _http(relay, Authorization=RELAY_KEY) as http:
        answer = http.post("/v1/send/email", json=EMAIL)
        assert answer.status_code == 523
        assert "not received" in answer.json()["message"]
        # Person calls still queue: they wait in the outbox for the gateway.
        assert http.post("/v1/persons/identify", json={"identifier": "u9"}).status_code == 202
    assert sandbox.stats()["opencdp"]["requests"] == 0


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- health, metrics, webhooks ------------------------------------------------------------

def test_health_follows_the_breakers(start_relay: StartRelay, sandbox: Any) -> None:
    relay = start_relay(client={"retry": RetryConfig(base_delay=0.01, max_delay=0.05,
                                                     max_attempts=1000)})
    with httpx.Client(base_url=relay.url, trust_env=False, timeout=10.0) as http, \
            _http(relay, Authorization=RELAY_KEY) as gateway:
        overall = http.get("/health")
        assert overall.status_code == 200
        assert overall.json()["status"] == "ok"
        assert http.get("/health/opencdp").json()["opencdp"]["circuit_state"] == "CLOSED"
        assert http.get("/health/nowhere").status_code == 404

        sandbox.set_faults({"customerio": {"down": True}})
        for i in range(6):
            gateway.post("/v1/persons/identify", json={"identifier": f"h{i}"})
        wait_until(lambda: http.get("/health/customerio").status_code == 503, timeout=10)
        degraded = http.get("/health")
        assert degraded.status_code == 200  # Customer.io down degrades; nothing is lost
        assert degraded.json()["status"] == "degraded"
        assert http.get("/health/opencdp").status_code == 200

        sandbox.clear_faults()
        # HALF_OPEN closes after three successful requests: keep traffic coming until it does.
        sent = 0

        def recovered() -> bool:
            nonlocal sent
            sent += 1
            gateway.post("/v1/persons/identify", json={"identifier": f"r{sent}"})
            return http.get("/health/customerio").status_code == 200

        wait_until(recovered, timeout=15)
    assert _client(relay).flush(10)
    assert len(sandbox.people("customerio")) == 6 + sent


def test_metrics_are_scraped_from_a_registry_of_the_relays_own(
    relay: RelayServer, gateway: httpx.Client
) -> None:
    assert gateway.post("/v1/persons/identify", json={"identifier": "m1"}).status_code == 202
    assert gateway.post("/v1/persons/identify", json={"identifier": ""}).status_code == 400
    assert _client(relay).flush(10)
    scrape = httpx.get(relay.url + "/metrics", trust_env=False, timeout=10.0)
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert 'opencdp_relay_requests_total{endpoint="identify",status="202"} 1.0' in text
    assert 'opencdp_relay_requests_total{endpoint="identify",status="400"} 1.0' in text
    assert 'opencdp_messages_delivered_total{destination="opencdp",kind="identify"} 1.0' in text


def test_signed_webhooks_act_through_the_relays_client(
    start_relay: StartRelay, sandbox: Any
) -> None:
    relay = start_relay(webhook_signing_key=SIGNING_KEY)
    with _http(relay, Authorization=RELAY_KEY) as http:
        assert http.post("/v1/persons/identify",
                         json={"identifier": "u-bounce",
                               "properties": {"email": "b@example.com"}}).status_code == 202
    assert _client(relay).flush(10)
    url = str(relay.urls["webhooks"])
    event = {"event_id": "01HZX3Q4T0V5B8K2M7N9P6R1S9", "object_type": "email",
             "metric": "bounced", "timestamp": 1700000000,
             "data": {"customer_id": "u-bounce", "identifiers": {"id": "u-bounce"},
                      "recipient": "b@example.com", "delivery_id": "d1"}}
    sent = sandbox.send_webhook(url, SIGNING_KEY, event)
    assert sent["status"] == 200, sent
    wait_until(lambda: (sandbox.person("customerio", "u-bounce") or {}).get("suppressed")
               is True, timeout=10)
    assert _client(relay).flush(10)
    attrs = sandbox.person("opencdp", "u-bounce")["attributes"]
    assert attrs["email_bounced"] is True

    body = orjson.dumps(event)
    stale = {"x-cio-timestamp": "1000", "x-cio-signature": sign_payload(SIGNING_KEY, 1000, body)}
    refused = httpx.post(url, content=body, headers=stale, trust_env=False)
    assert refused.status_code == 401


def test_no_signing_key_no_webhook_endpoint(relay: RelayServer) -> None:
    assert relay.urls["webhooks"] is None
    answer = httpx.post(relay.url + "/webhooks/customerio", content=b"{}", trust_env=False)
    assert answer.status_code == 404


# --- lifecycle -------------------------------------------------------------------------------

def test_shutdown_drains_and_closes_the_client(
    start_relay: StartRelay, sandbox: Any
) -> None:
    relay = start_relay()
    sandbox.set_faults({"customerio": {"latency_ms": 150}})
    with _http(relay, Authorization=RELAY_KEY) as http:
        for i in range(5):
            assert http.post("/v1/persons/track", json={"identifier": "d1", "eventName": "e",
                                                        "properties": {"i": i}}
                             ).status_code == 202
    client = _client(relay)
    relay.stop()
    assert relay.drained is True
    assert client.engine.closed
    assert len(sandbox.person("customerio", "d1")["events"]) == 5
    with pytest.raises(httpx.ConnectError):
        httpx.get(relay.url + "/health", trust_env=False, timeout=2)


def test_undelivered_messages_survive_a_restart_in_the_sqlite_outbox(
    sandbox: Any, tmp_path: Path
) -> None:
    sandbox.set_faults({"opencdp": {"down": True}})
    config = server_config(sandbox, tmp_path, drain_timeout=0.3)
    with RelayServer(config) as first, _http(first, Authorization=RELAY_KEY) as http:
        assert http.post("/v1/persons/identify",
                         json={"identifier": "kept", "properties": {"a": 1}}).status_code == 202
    assert first.drained is False
    assert sandbox.person("opencdp", "kept") is None
    sandbox.clear_faults()
    with RelayServer(config) as second:
        assert _client(second).flush(10)
    assert sandbox.person("opencdp", "kept")["attributes"] == {"a": 1}


def test_a_relay_that_cannot_open_its_queue_does_not_start(
    sandbox: Any, tmp_path: Path
) -> None:
    config = server_config(sandbox, tmp_path, queue="nosuch://queue")
    with pytest.raises(OpenCDPError, match=r"did not start.*nosuch"):
        RelayServer(config).start(timeout=10)


def test_the_relay_serves_https_when_given_a_certificate(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    from opencdp.sandbox.tls import make_tls_files

    files = make_tls_files(str(tmp_path))
    relay = start_relay(tls_cert_file=files.cert_file)
    assert relay.url.startswith("https://127.0.0.1:")
    trust = ssl.create_default_context(cafile=files.ca_file)
    with httpx.Client(base_url=str(relay.urls["gateway"]), verify=trust,
                      trust_env=False, timeout=10.0) as http:
        assert http.get("/v1/health/ping", headers={"Authorization": RELAY_KEY}
                        ).status_code == 200
