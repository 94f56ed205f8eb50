"""The endpoints over real loopback HTTP: uvicorn for ASGI, wsgiref for WSGI, same cases."""

from __future__ import annotations

import asyncio
import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from opencdp.webhooks import WebhookEvent, WebhookHandler, asgi_app
from support.servers import serve_asgi, wait_until

from .support import KEY, Recorder, RecordingClient, Serve, payload, signed


def _post_raw(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send only the request head (no body) and read the answer."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        conn.putrequest("POST", parts.path or "/")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _plus_one(headers: dict[str, str]) -> str:
    return str(int(headers["x-cio-timestamp"]) + 1)


# -- happy paths ------------------------------------------------------------------------------


def test_signed_event_is_accepted_and_dispatched(serve: Serve, http: httpx.Client) -> None:
    recorder = Recorder()
    handler = WebhookHandler(KEY)
    handler.on("email", "delivered")(recorder)
    url = serve(handler)
    body = payload("delivered")
    response = http.post(url, content=body, headers=signed(body))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "accepted", "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ"}
    (event,) = recorder.wait_for(1)
    assert isinstance(event, WebhookEvent)
    assert (event.name, event.person_id) == ("email_delivered", "42")
    assert event.recipient == "ada@example.com"


def test_bounce_and_spam_flow_suppresses_and_marks(serve: Serve, http: httpx.Client) -> None:
    client = RecordingClient()
    alerts = Recorder()
    url = serve(WebhookHandler(KEY, client=client, alert=alerts))
    bounce = payload("bounced", event_id="ev-bounce", person="p-1", timestamp=1700000000)
    spam = payload("spammed", event_id="ev-spam", person="p-2", timestamp=1700000100)
    delivered = payload("delivered", event_id="ev-ok", person="p-3")
    for body in (bounce, spam, delivered):
        assert http.post(url, content=body, headers=signed(body)).status_code == 200
    calls = client.wait_for(4)
    assert sorted(calls, key=repr) == sorted(
        [
            ("identify", "p-1", {"email_bounced": True, "email_bounced_at": 1700000000}),
            ("suppress", "p-1"),
            (
                "identify",
                "p-2",
                {"email_spam_complaint": True, "email_spam_complaint_at": 1700000100},
            ),
            ("suppress", "p-2"),
        ],
        key=repr,
    )
    assert sorted(e.event_id for e in alerts.wait_for(2)) == ["ev-bounce", "ev-spam"]


def test_response_is_sent_before_handlers_finish(serve: Serve, http: httpx.Client) -> None:
    """A slow handler never delays the 2xx Customer.io waits 4 s for."""
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    handler = WebhookHandler(KEY)

    @handler.on("*")
    def slow(event: WebhookEvent) -> None:
        started.set()
        release.wait(10)
        finished.set()

    url = serve(handler)
    body = payload("sent")
    try:
        response = http.post(url, content=body, headers=signed(body))
        assert response.status_code == 200
        assert not finished.is_set()
        assert started.wait(5)
    finally:
        release.set()
    assert finished.wait(5)


def test_handler_exception_still_answers_200(
    serve: Serve, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    handler = WebhookHandler(KEY)
    recorder = Recorder()

    @handler.on("opened")
    def broken(event: WebhookEvent) -> None:
        raise RuntimeError("handler bug")

    handler.on("opened")(recorder)
    url = serve(handler)
    with caplog.at_level(logging.ERROR, logger="opencdp.webhooks"):
        for n in range(2):
            body = payload("opened", event_id=f"ev-{n}")
            assert http.post(url, content=body, headers=signed(body)).status_code == 200
        recorder.wait_for(2)
        wait_until(lambda: handler.stats().get("handler_errors") == 2)
    assert "broken failed" in caplog.text


def test_timestamp_inside_the_window_is_accepted(serve: Serve, http: httpx.Client) -> None:
    url = serve(WebhookHandler(KEY))
    body = payload()
    headers = signed(body, ts=int(time.time()) - 290)
    assert http.post(url, content=body, headers=headers).status_code == 200


# -- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda h, b: {k: v for k, v in h.items() if k != "x-cio-signature"}, "missing_signature"),
        (lambda h, b: {k: v for k, v in h.items() if k != "x-cio-timestamp"}, "missing_timestamp"),
        (lambda h, b: {"content-type": "application/json"}, "missing_timestamp"),
        (lambda h, b: {**h, "x-cio-signature": "0" * 64}, "signature_mismatch"),
        (lambda h, b: signed(b, key="somebody else's key"), "signature_mismatch"),
        (lambda h, b: {**h, "x-cio-timestamp": _plus_one(h)}, "signature_mismatch"),
        (lambda h, b: signed(b, ts=int(time.time()) - 301), "stale_timestamp"),
        (lambda h, b: signed(b, ts=int(time.time()) - 7 * 86400), "stale_timestamp"),
        (lambda h, b: signed(b, ts=int(time.time()) + 301), "future_timestamp"),
        (lambda h, b: {**h, "x-cio-timestamp": "yesterday"}, "bad_timestamp"),
    ],
    ids=[
        "no-signature",
        "no-timestamp",
        "no-headers",
        "wrong-signature",
        "wrong-key",
        "timestamp-changed",
        "stale",
        "a-week-old",
        "future",
        "not-a-number",
    ],
)
def test_bad_signatures_get_401_and_run_nothing(
    serve: Serve,
    http: httpx.Client,
    mangle: Callable[[dict[str, str], bytes], dict[str, str]],
    reason: str,
) -> None:
    client = RecordingClient()
    handler = WebhookHandler(KEY, client=client)
    recorder = Recorder()
    handler.on("*")(recorder)
    url = serve(handler)
    body = payload()
    response = http.post(url, content=body, headers=mangle(signed(body), body))
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_signature", "reason": reason}
    assert handler.stats() == {f"rejected_{reason}": 1}
    assert client.calls == [] and recorder.events == []
    assert KEY not in response.text


def test_tampered_body_gets_401(serve: Serve, http: httpx.Client) -> None:
    url = serve(WebhookHandler(KEY))
    body = payload(person="42")
    headers = signed(body)
    response = http.post(url, content=payload(person="43"), headers=headers)
    assert response.status_code == 401


def test_replayed_event_id_gets_duplicate(serve: Serve, http: httpx.Client) -> None:
    client = RecordingClient()
    url = serve(WebhookHandler(KEY, client=client))
    body = payload()
    first = http.post(url, content=body, headers=signed(body))
    replay = http.post(url, content=body, headers=signed(body))
    assert first.json()["status"] == "accepted"
    assert (replay.status_code, replay.json()) == (
        200,
        {"status": "duplicate", "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ"},
    )
    client.wait_for(2)
    later = payload("delivered", event_id="next")
    http.post(url, content=later, headers=signed(later))
    assert http.post(url, content=body, headers=signed(body)).json()["status"] == "duplicate"
    assert len(client.calls) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[]", "body"),
        (b'{"object_type": "email", "metric": "sent", "timestamp": 1}', "event_id"),
        (b'{"event_id": "e", "metric": "sent", "timestamp": "now"}', "timestamp"),
    ],
)
def test_signed_but_malformed_body_gets_400(
    serve: Serve, http: httpx.Client, body: bytes, field: str
) -> None:
    url = serve(WebhookHandler(KEY))
    response = http.post(url, content=body, headers=signed(body))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert response.json()["field"] == field


def test_declared_oversized_body_gets_413_before_it_is_sent(serve: Serve) -> None:
    url = serve(WebhookHandler(KEY))
    status, body = _post_raw(url, {"content-length": str((1 << 20) + 1), **signed(b"")})
    assert status == 413
    assert b'"payload_too_large"' in body


def test_body_at_the_limit_is_read(serve: Serve, http: httpx.Client) -> None:
    body = payload()
    url = serve(WebhookHandler(KEY, max_body_bytes=len(body)))
    assert http.post(url, content=body, headers=signed(body)).status_code == 200


def test_bad_content_length_gets_400(serve: Serve) -> None:
    """uvicorn refuses it itself; behind wsgiref the app does."""
    url = serve(WebhookHandler(KEY))
    status, _ = _post_raw(url, {"content-length": "12abc"})
    assert status == 400


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_get_405(serve: Serve, http: httpx.Client, method: str) -> None:
    url = serve(WebhookHandler(KEY))
    response = http.request(method, url)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# -- ASGI specifics ---------------------------------------------------------------------------


def test_asgi_streamed_body_over_the_limit_gets_413(http: httpx.Client) -> None:
    """Without a Content-Length the ASGI app stops reading at the limit."""

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 256

    with serve_asgi(asgi_app(WebhookHandler(KEY, max_body_bytes=1024))) as url:
        response = http.post(url, content=chunks(), headers=signed(b""))
    assert response.status_code == 413
    assert response.json() == {"error": "payload_too_large", "limit": 1024}


def test_asgi_app_mounts_in_starlette(http: httpx.Client) -> None:
    """As a Route (exact path, as ``opencdp serve`` does) and as a Mount."""
    client = RecordingClient()
    endpoint = asgi_app(WebhookHandler(KEY, client=client))
    app = Starlette(
        routes=[
            Route("/webhooks/customerio", endpoint, methods=["POST"]),
            Mount("/hooks", app=endpoint),
        ]
    )
    with serve_asgi(app) as url:
        body = payload()
        routed = http.post(f"{url}/webhooks/customerio", content=body, headers=signed(body))
        assert routed.json()["status"] == "accepted"
        again = http.post(f"{url}/hooks/customerio", content=body, headers=signed(body))
        assert again.json()["status"] == "duplicate"
        unsigned = http.post(f"{url}/webhooks/customerio", content=body)
        assert unsigned.status_code == 401
    assert [c[0] for c in client.wait_for(2)] == ["identify", "suppress"]


def test_asgi_answers_lifespan_and_closes_websockets() -> None:
    """Run standalone under uvicorn, the app speaks lifespan; a websocket is closed at once."""
    endpoint = asgi_app(WebhookHandler(KEY))

    async def drive(scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        await endpoint(scope, receive, send)
        return sent

    lifespan = asyncio.run(
        drive({"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    )
    assert [m["type"] for m in lifespan] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    connect = [{"type": "websocket.connect"}]
    websocket = asyncio.run(drive({"type": "websocket", "path": "/"}, connect))
    assert websocket == [{"type": "websocket.close", "code": 1008}]
