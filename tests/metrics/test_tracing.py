"""Delivery spans through OpenTelemetry's SDK and its in-memory exporter."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from opencdp import Client
from opencdp.errors import ConfigurationError
from opencdp.tracing import instrument
from support.servers import refused_port, wait_until


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def test_one_span_per_delivery_request(make_client: Callable[..., Client],
                                       provider: TracerProvider,
                                       exporter: InMemorySpanExporter) -> None:
    client = make_client()
    instrument(client, provider.get_tracer("test"))
    client.identify("user_1", {"plan": "pro"})
    for i in range(4):
        client.track("user_1", "page_viewed", {"n": i})
    assert client.flush(timeout=10)

    spans = exporter.get_finished_spans()
    by_destination: dict[str, list[Any]] = {"opencdp": [], "customerio": []}
    for span in spans:
        by_destination[span.attributes["opencdp.destination"]].append(span)
    health = client.health().destinations
    for name, found in by_destination.items():
        assert len(found) == health[name].requests, name
    assert sum(s.attributes["opencdp.message_count"] for s in by_destination["opencdp"]) == 5
    assert sum(s.attributes["opencdp.message_count"] for s in by_destination["customerio"]) == 5
    kinds = {k for s in spans for k in s.attributes["opencdp.kinds"]}
    assert kinds == {"identify", "track"}
    for span in spans:
        assert span.name == f"deliver {span.attributes['opencdp.destination']}"
        assert span.kind is SpanKind.CLIENT
        assert span.parent is None
        assert span.attributes["http.response.status_code"] == 200
        assert span.attributes["http.request.method"] in ("POST", "PUT")
        assert span.status.status_code is StatusCode.UNSET
        assert span.start_time is not None and span.end_time is not None
        assert 0 < span.start_time <= span.end_time


def test_failed_requests_are_error_spans(make_client: Callable[..., Client], sandbox: Any,
                                         provider: TracerProvider,
                                         exporter: InMemorySpanExporter) -> None:
    sandbox.set_faults({"customerio": {"down": True, "down_status": 500}})
    client = make_client(timeout=1.0)
    instrument(client, provider.get_tracer("test"))
    client.track("user_1", "page_viewed")

    def failed_spans() -> list[Any]:
        return [s for s in exporter.get_finished_spans()
                if s.attributes["opencdp.destination"] == "customerio"]

    wait_until(lambda: len(failed_spans()) >= 2, what="two failed Customer.io requests")
    failed = failed_spans()
    assert all(s.status.status_code is StatusCode.ERROR for s in failed)
    assert {s.attributes["http.response.status_code"] for s in failed} == {500}
    assert {s.attributes["error.type"] for s in failed} == {"500"}


def test_transport_failures_name_the_reason_without_keys(
        make_client: Callable[..., Client], provider: TracerProvider,
        exporter: InMemorySpanExporter) -> None:

    port = refused_port()
    client = make_client(cdp_endpoint=f"http://127.0.0.1:{port}/gateway/data-gateway",
                         send_to_customer_io=False, customer_io=None, timeout=1.0)
    instrument(client, provider.get_tracer("test"))
    client.identify("user_1", {"plan": "pro"})
    wait_until(lambda: bool(exporter.get_finished_spans()), what="a failed request's span")
    spans = exporter.get_finished_spans()
    span = spans[0]
    assert span.status.status_code is StatusCode.ERROR
    assert "http.response.status_code" not in span.attributes
    assert span.attributes["opencdp.failure_reason"]
    assert span.attributes["error.type"]
    assert all("cdp-test-key" not in str(s.attributes) for s in spans)


def test_remove_and_reinstrument(make_client: Callable[..., Client], provider: TracerProvider,
                                 exporter: InMemorySpanExporter) -> None:
    client = make_client(send_to_customer_io=False, customer_io=None)
    tracer = provider.get_tracer("test")
    instrument(client, tracer)
    remove = instrument(client, tracer)
    assert len(client.engine.dispatcher.exchange_hooks) == 1, "instrumenting again replaces"
    client.identify("user_1", {"plan": "pro"})
    assert client.flush(timeout=10)
    assert len(exporter.get_finished_spans()) == 1
    remove()
    client.identify("user_2", {"plan": "pro"})
    assert client.flush(timeout=10)
    assert len(exporter.get_finished_spans()) == 1


def test_without_opentelemetry_the_error_says_what_to_install(
        make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(send_to_customer_io=False, customer_io=None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigurationError, match="pip install opentelemetry-api"):
        instrument(client)
    assert client.engine.dispatcher.exchange_hooks == ()


def test_instrument_needs_a_client() -> None:
    with pytest.raises(ConfigurationError, match="Client or AsyncClient"):
        instrument(object())  # type: ignore[arg-type]


def test_instrumenting_and_removing_leave_other_exchange_hooks(
        make_client: Callable[..., Client], provider: TracerProvider) -> None:
    """Hooks are added and removed through the dispatcher, never by editing its list."""
    client = make_client(send_to_customer_io=False, customer_io=None)
    dispatcher = client.engine.dispatcher
    seen: list[str] = []

    def mine(lane: str, *rest: object) -> None:
        seen.append(lane)

    dispatcher.add_exchange_hook(mine)
    instrument(client, provider.get_tracer("test"))
    remove = instrument(client, provider.get_tracer("test"))
    assert len(dispatcher.exchange_hooks) == 2 and dispatcher.exchange_hooks[0] is mine
    remove()
    assert dispatcher.exchange_hooks == (mine,)
    client.identify("user_1", {"plan": "pro"})
    assert client.flush(timeout=10)
    assert seen == ["opencdp"]
    dispatcher.remove_exchange_hook(mine)
    dispatcher.remove_exchange_hook(mine)
    assert dispatcher.exchange_hooks == ()
