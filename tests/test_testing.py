"""The test support shipped to users: MockTransport, capture (sync and async), the plugin."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opencdp import Client
from opencdp.testing import (
    NO_BACKOFF,
    AsyncCapture,
    Capture,
    Failure,
    MockTransport,
    Request,
    Response,
    capture,
    sandbox_client,
)


def test_testing_imports_without_pytest() -> None:
    code = ("import sys; sys.modules['pytest'] = None; import opencdp.testing as t; "
            "c = t.capture(); c.client.track('u1', 'e'); print(len(c.messages)); c.close()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "1"


def test_capture_records_each_call_once_with_both_destinations() -> None:
    with capture() as cap:
        cap.client.identify("u1", {"email": "u1@example.com"})
        cap.client.track("u1", "signed_up", {"plan": "pro"}, timestamp=1_700_000_000)
        messages = cap.messages
        assert [(m.kind, m.identifier, m.name) for m in messages] == [
            ("identify", "u1", None), ("track", "u1", "signed_up")]
        assert messages[1].data == {"plan": "pro"}
        assert messages[1].timestamp == 1_700_000_000
        assert all(m.destinations == ("opencdp", "customerio") for m in messages)
        assert messages[1].wire["customerio"]["name"] == "signed_up"
        cap.clear()
        assert cap.messages == []


def test_capture_runs_customerio_only_operations() -> None:
    with capture() as cap:
        cap.client.suppress("u2")
        cap.client.register_device("u2", "dev-1", "ios", apn_token="tok-1")
        cap.client.track_anonymous("anon-1", "page_viewed", {"path": "/"})
        kinds = [(m.kind, m.destinations) for m in cap.messages]
    assert kinds == [("suppress", ("customerio",)),
                     ("add_device", ("opencdp", "customerio")),
                     ("track_anonymous", ("customerio",))]


def test_capture_refuses_what_production_refuses() -> None:
    from opencdp import ValidationError

    with capture() as cap:
        cap.client.track("u3", "ok_event", {"n": 1})
        for bad in (math.nan, object()):
            with pytest.raises(ValidationError):
                cap.client.track("u3", "bad_event", {"n": bad})
        cap.client.identify("u3", {"bio": "x" * 1200})  # a limit only Customer.io has
        calls = [(m.name or m.kind, m.destinations) for m in cap.messages]
        dead = [(d.destination, d.message.kind) for d in cap.dead_letters()]
    assert calls == [("ok_event", ("opencdp", "customerio")), ("identify", ("opencdp",))]
    assert dead == [("customerio", "identify")]


def test_capture_strict_raises_at_the_call() -> None:
    from opencdp import ValidationError

    with capture(strict=True) as cap, pytest.raises(ValidationError):
        cap.client.track("u4", "e", {"n": math.nan})


QUEUES = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.mark.parametrize("queue", QUEUES)
def test_capture_works_with_every_queue(queue: str, tmp_path: Path,
                                        request: pytest.FixtureRequest,
                                        caplog: pytest.LogCaptureFixture) -> None:
    url = {"memory": "memory", "sqlite": f"sqlite:///{tmp_path / 'q.db'}"}.get(queue)
    if url is None:
        url = f"{request.getfixturevalue('redis_url').rstrip('/')}?prefix=cap{os.getpid()}"
    cap = capture(queue=url)
    for i in range(50):
        cap.client.track(f"u{i}", "e", {"i": i})
    cap.client.suppress("u0")
    messages = cap.messages
    assert sorted(m.data["i"] for m in messages if m.kind == "track") == list(range(50))
    assert {m.destinations for m in messages if m.kind == "track"} == {
        ("opencdp", "customerio")}
    assert [m.kind for m in messages].count("suppress") == 1
    cap.close()
    assert "OCDP302" not in caplog.text


def test_capture_memory_queue_closes_without_ocdp302(caplog: pytest.LogCaptureFixture) -> None:
    cap = Capture()
    cap.client.track("u1", "e")
    cap.close()
    assert "OCDP302" not in caplog.text


def test_async_capture() -> None:
    async def run() -> list[Any]:
        async with AsyncCapture() as cap:
            await cap.client.track("u5", "async_event", {"x": 1})
            await cap.client.identify("u5", {"plan": "free"})
            assert await cap.flush(5)
            return cap.messages

    messages = asyncio.run(run())
    assert [(m.kind, m.name) for m in messages] == [("track", "async_event"),
                                                   ("identify", None)]


def test_mock_transport_failures_are_retried_then_delivered() -> None:
    calls: list[str] = []

    async def handler(request: Request) -> Response | Failure:
        calls.append(request.path)
        if len(calls) <= 2:
            return Response(503, b'{"message": "busy"}', {})
        if len(calls) == 3:
            raise RuntimeError("bug in the handler")
        return Response(200, b"{}", {})

    client = Client(cdp_api_key="k", transport=MockTransport(handler), register_atexit=False,
                    **NO_BACKOFF)
    client.track("u6", "e")
    assert client.flush(10)
    client.close(timeout=2)
    assert calls == ["/v1/persons/track"] * 4
    assert client.dead_letters() == []


def test_mock_transport_refuses_non_callable() -> None:
    with pytest.raises(TypeError):
        MockTransport("not callable")  # type: ignore[arg-type]


def test_sandbox_client_delivers_with_no_backoff(sandbox: Any) -> None:
    sandbox.set_faults({"customerio": {"error_rate": 0.5, "statuses": [500], "seed": 3}})
    client = sandbox_client(sandbox)
    for i in range(10):
        client.track("u1", "page_viewed", {"i": i})
        assert client.flush(timeout=10)
    assert len(sandbox.person("customerio", "u1")["events"]) == 10
    client.close(timeout=2)


def test_capture_records_the_v1_only_calls_too() -> None:
    with capture() as cap:
        cap.client.report_metric("delivery-1", "opened")
        cap.client.unsubscribe_delivery("delivery-2")
        cap.client.add_to_segment(7, ["u1", "u2"])
        kinds = sorted((m.kind, m.destinations) for m in cap.messages)
    assert len(kinds) == 3
    assert all(destinations == ("customerio",) for _, destinations in kinds)


def test_the_wire_types_are_one_set_wherever_they_are_imported_from() -> None:
    """Users' tests import them from here, destinations and transports from ``opencdp.wire``:
    one class each, so an ``isinstance`` in a handler holds whichever was imported."""
    from opencdp import testing, transport, wire
    from opencdp.destinations import base

    for name in ("Request", "Response", "Failure"):
        assert getattr(testing, name) is getattr(wire, name) is getattr(base, name)
    assert testing.Transport is wire.Transport is transport.Transport
    assert isinstance(testing.MockTransport(lambda r: None), wire.Transport)
