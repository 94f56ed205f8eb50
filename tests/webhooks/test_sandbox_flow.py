"""End to end: the sandbox sends signed webhooks, the built-ins act through a real ``Client``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from opencdp import Client, CustomerIO
from opencdp.config import RetryConfig
from opencdp.webhooks import WebhookHandler

from .support import KEY, Recorder, Serve, payload


@pytest.fixture
def client(sandbox: Any) -> Iterator[Client]:
    made = Client(
        cdp_api_key="cdp-test-key",
        cdp_endpoint=sandbox.opencdp_url,
        cdp_fallback_endpoints=[],
        send_to_customer_io=True,
        customer_io=CustomerIO("sandbox-site", "sandbox-track-key", track_url=sandbox.track_url),
        retry=RetryConfig(base_delay=0.01, max_delay=0.05, max_attempts=8),
        register_atexit=False,
        timeout=5.0,
    )
    yield made
    made.close(timeout=2)


def _event(metric: str, person: str, event_id: str) -> dict[str, Any]:
    body = payload(metric, event_id=event_id, person=person, timestamp=1700000000)
    return dict(orjson.loads(body))


def test_bounce_and_complaint_suppress_in_customerio_and_mark_in_opencdp(
    sandbox: Any, client: Client, serve: Serve
) -> None:
    for person in ("u-bounce", "u-spam", "u-fine"):
        client.identify(person, {"email": f"{person}@example.com"})
    assert client.flush(10)

    done = Recorder()
    handler = WebhookHandler(KEY, client=client)
    handler.on("*")(done)  # runs after the built-ins
    url = serve(handler)

    sends = (("bounced", "u-bounce"), ("spammed", "u-spam"), ("delivered", "u-fine"))
    for metric, person in sends:
        sent = sandbox.send_webhook(url, KEY, _event(metric, person, f"ev-{metric}"))
        assert sent["status"] == 200, sent
    done.wait_for(3)
    assert client.flush(10)

    bounced = sandbox.person("customerio", "u-bounce")
    spammed = sandbox.person("customerio", "u-spam")
    fine = sandbox.person("customerio", "u-fine")
    assert bounced is not None and bounced["suppressed"] is True
    assert spammed is not None and spammed["suppressed"] is True
    assert fine is not None and not fine.get("suppressed")

    cdp_bounced = sandbox.person("opencdp", "u-bounce")
    cdp_spammed = sandbox.person("opencdp", "u-spam")
    assert cdp_bounced is not None and cdp_spammed is not None
    assert _attrs(cdp_bounced)["email_bounced"] is True
    assert _attrs(cdp_bounced)["email_bounced_at"] == 1700000000
    assert _attrs(cdp_spammed)["email_spam_complaint"] is True
    assert "email_bounced" not in _attrs(sandbox.person("opencdp", "u-fine") or {})


def _attrs(person: dict[str, Any]) -> dict[str, Any]:
    return dict(person.get("attributes") or {})


def test_sandbox_sent_rejections(sandbox: Any, serve: Serve) -> None:
    handler = WebhookHandler(KEY)
    url = serve(handler)
    event = _event("bounced", "u1", "ev-r")
    wrong_key = sandbox.send_webhook(url, "not-the-key", event)
    assert (wrong_key["status"], orjson.loads(wrong_key["body"])["reason"]) == (
        401,
        "signature_mismatch",
    )
    stale = sandbox.send_webhook(url, KEY, event, timestamp=int(time.time()) - 3600)
    assert orjson.loads(stale["body"])["reason"] == "stale_timestamp"
    first = sandbox.send_webhook(url, KEY, event)
    replay = sandbox.send_webhook(url, KEY, event)
    assert orjson.loads(first["body"])["status"] == "accepted"
    assert (replay["status"], orjson.loads(replay["body"])["status"]) == (200, "duplicate")
