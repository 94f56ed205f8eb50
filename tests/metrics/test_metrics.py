"""The collector, scraped over HTTP after real deliveries to the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from opencdp import Client
from opencdp.config import RetryConfig
from opencdp.errors import ConfigurationError
from opencdp.metrics import CIRCUIT_STATES, OpenCDPCollector, register
from support.servers import wait_until

from .conftest import Scrape

DESTINATIONS = ("opencdp", "customerio")


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_scrape_after_deliveries(make_client: Callable[..., Client],
                                 registry: CollectorRegistry, scrape: Scrape) -> None:
    client = make_client()
    register(client, registry)
    for i in range(3):
        client.identify(f"user_{i}", {"plan": "pro"})
    client.identify("user_0", {"plan": "pro"})  # the same call again: a new fact, sent
    for i in range(7):
        client.track(f"user_{i % 3}", "page_viewed", {"n": i})
    client.track("stranger", "page_viewed")  # never identified here: OCDP115
    assert client.flush(timeout=10)

    samples = scrape()
    for dest in DESTINATIONS:
        for kind, count in (("identify", 4), ("track", 8)):
            for metric in ("dispatched", "delivered"):
                assert value(samples, f"opencdp_messages_{metric}_total",
                             destination=dest, kind=kind) == count, (dest, kind, metric)
        assert value(samples, "opencdp_messages_retried_total", destination=dest,
                     kind="track") == 0
        requests = value(samples, "opencdp_requests_total", destination=dest, status="200")
        assert requests >= 1
        count = value(samples, "opencdp_request_duration_seconds_count", destination=dest)
        assert count == requests
        assert value(samples, "opencdp_request_duration_seconds_bucket", destination=dest,
                     le="+Inf") == count
        buckets = [v for (name, labels), v in samples.items()
                   if name == "opencdp_request_duration_seconds_bucket"
                   and ("destination", dest) in labels]
        assert buckets == sorted(buckets), "cumulative buckets never decrease"
        assert value(samples, "opencdp_request_duration_seconds_sum", destination=dest) > 0
        assert value(samples, "opencdp_circuit_state", destination=dest) == 0
        assert value(samples, "opencdp_queue_pending", destination=dest) == 0
        assert value(samples, "opencdp_dead_letters", destination=dest) == 0
    # One request per message to the gateway, batches to Customer.io.
    assert value(samples, "opencdp_requests_total", destination="opencdp", status="200") == 12
    assert value(samples, "opencdp_requests_total", destination="customerio", status="200") < 12
    assert value(samples, "opencdp_guard_warnings_total", code="OCDP115") >= 1
    assert value(samples, "opencdp_idempotency_suppressed_total") == 0


def test_scrape_during_an_outage(make_client: Callable[..., Client],
                                 registry: CollectorRegistry, scrape: Scrape,
                                 sandbox: Any) -> None:
    client = make_client()
    register(client, registry)
    sandbox.set_faults({"customerio": {"down": True, "down_status": 500}})
    for i in range(5):
        client.track("user_1", "item_added", {"i": i})
    wait_until(lambda: value(scrape(), "opencdp_circuit_state", destination="customerio")
               == CIRCUIT_STATES["OPEN"], what="breaker OPEN in the metrics")
    samples = scrape()
    assert value(samples, "opencdp_requests_total", destination="customerio", status="500") >= 5
    assert value(samples, "opencdp_circuit_failures", destination="customerio") >= 5
    assert value(samples, "opencdp_messages_retried_total", destination="customerio",
                 kind="track") >= 5
    assert value(samples, "opencdp_messages_delivered_total", destination="customerio",
                 kind="track") == 0
    assert value(samples, "opencdp_queue_pending", destination="customerio") + value(
        samples, "opencdp_queue_in_flight", destination="customerio") == 5
    assert value(samples, "opencdp_queue_oldest_pending_age_seconds",
                 destination="customerio") > 0
    assert value(samples, "opencdp_circuit_state", destination="opencdp") == 0
    assert value(samples, "opencdp_messages_delivered_total", destination="opencdp",
                 kind="track") == 5


def test_scrape_after_dead_letters(make_client: Callable[..., Client],
                                   registry: CollectorRegistry, scrape: Scrape,
                                   sandbox: Any) -> None:
    client = make_client(retry=RetryConfig(base_delay=0.01, max_delay=0.05, max_attempts=1))
    register(client, registry)
    sandbox.set_faults({"customerio": {"down": True, "down_status": 500}})
    for i in range(5):
        client.track("user_1", "item_added", {"i": i})
    assert client.flush(timeout=10)
    samples = scrape()
    assert value(samples, "opencdp_messages_dead_lettered_total", destination="customerio",
                 kind="track") == 5
    assert value(samples, "opencdp_dead_letters", destination="customerio") == 5
    assert value(samples, "opencdp_dead_letters", destination="opencdp") == 0
    assert value(samples, "opencdp_messages_delivered_total", destination="opencdp",
                 kind="track") == 5


def test_registering_reads_nothing_until_a_scrape(make_client: Callable[..., Client],
                                                  registry: CollectorRegistry,
                                                  scrape: Scrape) -> None:
    client = make_client()
    calls: list[int] = []
    health = client.health

    def counted() -> Any:
        calls.append(1)
        return health()

    client.health = counted  # type: ignore[method-assign]
    collector = register(client, registry)
    assert calls == []
    assert "customerio" in repr(collector)
    scrape()
    scrape()
    assert len(calls) == 2
    registry.unregister(collector)
    assert value(scrape(), "opencdp_idempotency_suppressed_total") == 0
    assert len(calls) == 2


def test_collector_needs_a_client() -> None:
    with pytest.raises(ConfigurationError, match="Client or AsyncClient"):
        OpenCDPCollector(object())  # type: ignore[arg-type]


def test_a_failing_snapshot_still_exports_the_counters(
        make_client: Callable[..., Client], registry: CollectorRegistry, scrape: Scrape,
        caplog: pytest.LogCaptureFixture) -> None:
    client = make_client()
    register(client, registry)
    client.identify("user_1", {"plan": "pro"})
    assert client.flush(timeout=10)

    def broken() -> Any:
        raise RuntimeError("redis://:hunter2-password@10.0.0.1 refused")

    client.health = broken  # type: ignore[method-assign]
    samples = scrape()
    assert value(samples, "opencdp_messages_delivered_total", destination="opencdp",
                 kind="identify") == 1
    assert ("opencdp_queue_pending", (("destination", "opencdp"),)) not in samples
    assert "health snapshot failed: RuntimeError" in caplog.text
    assert "hunter2" not in caplog.text
