"""Prometheus metrics for a client, read from its own counters at scrape time.

A custom collector rather than ``Counter``/``Histogram`` objects updated on the delivery
path: the lanes already count everything (``LaneCounters``), so a metric update per message
would only pay twice for the same number. Between scrapes this costs nothing; a scrape copies
a few small dicts and takes one health snapshot (one outbox count query).

Needs the ``metrics`` extra (``pip install 'opencdp[metrics]'``). Metric names:

=============================================  =========  ===============================
name                                           type       labels
=============================================  =========  ===============================
opencdp_messages_dispatched_total              counter    destination, kind
opencdp_messages_delivered_total               counter    destination, kind
opencdp_messages_retried_total                 counter    destination, kind
opencdp_messages_dead_lettered_total           counter    destination, kind
opencdp_messages_dropped_total                 counter    destination, reason
opencdp_requests_total                         counter    destination, status
opencdp_request_duration_seconds               histogram  destination
opencdp_circuit_state                          gauge      destination (0 closed, 1 half-open,
                                                          2 open)
opencdp_circuit_failures                       gauge      destination
opencdp_queue_pending                          gauge      destination
opencdp_queue_in_flight                        gauge      destination
opencdp_queue_oldest_pending_age_seconds       gauge      destination
opencdp_dead_letters                           gauge      destination
opencdp_rate_limit_throttled_total             counter    destination
opencdp_rate_limit_paused_seconds              gauge      destination
opencdp_guard_warnings_total                   counter    code
opencdp_idempotency_suppressed_total           counter
=============================================  =========  ===============================
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ConfigurationError(
        "opencdp.metrics needs prometheus-client: pip install 'opencdp[metrics]'"
    ) from exc

from .dispatch import LATENCY_BUCKETS

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .health import Health

__all__ = ["CIRCUIT_STATES", "OpenCDPCollector", "register"]

CIRCUIT_STATES = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}
"""The value of ``opencdp_circuit_state`` for each breaker state."""

_OUTCOMES = (
    ("dispatched", "messages_dispatched",
     "Messages handed to a destination's lane for the first time (enqueued for delivery)."),
    ("delivered", "messages_delivered", "Messages the destination acknowledged."),
    ("retried", "messages_retried", "Message deliveries rescheduled after a failure."),
    ("dead", "messages_dead_lettered", "Messages moved to the dead-letter store."),
)
_DEST = ["destination"]

logger = logging.getLogger("opencdp.metrics")


def _families() -> dict[str, Any]:
    families: dict[str, Any] = {}
    for outcome, name, doc in _OUTCOMES:
        families[outcome] = CounterMetricFamily(f"opencdp_{name}", doc,
                                                labels=["destination", "kind"])
    families["dropped"] = CounterMetricFamily(
        "opencdp_messages_dropped", "Messages dropped by a full in-memory queue's policy.",
        labels=["destination", "reason"])
    families["requests"] = CounterMetricFamily(
        "opencdp_requests", "Delivery requests by HTTP status ('error' when no response came).",
        labels=["destination", "status"])
    families["latency"] = HistogramMetricFamily(
        "opencdp_request_duration_seconds", "Delivery request duration, send to response.",
        labels=_DEST)
    families["circuit"] = GaugeMetricFamily(
        "opencdp_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        labels=_DEST)
    families["failures"] = GaugeMetricFamily(
        "opencdp_circuit_failures", "Consecutive failed requests counted by the breaker.",
        labels=_DEST)
    families["pending"] = GaugeMetricFamily(
        "opencdp_queue_pending", "Messages waiting in the outbox for this destination.",
        labels=_DEST)
    families["in_flight"] = GaugeMetricFamily(
        "opencdp_queue_in_flight", "Messages leased to a delivery request right now.",
        labels=_DEST)
    families["age"] = GaugeMetricFamily(
        "opencdp_queue_oldest_pending_age_seconds",
        "Age of the oldest pending message (0 when none is pending).", labels=_DEST)
    families["dead_letters"] = GaugeMetricFamily(
        "opencdp_dead_letters", "Dead letters stored for this destination.", labels=_DEST)
    families["throttled"] = CounterMetricFamily(
        "opencdp_rate_limit_throttled", "Times the token bucket made the lane wait.",
        labels=_DEST)
    families["paused"] = GaugeMetricFamily(
        "opencdp_rate_limit_paused_seconds",
        "Seconds left of a pause a 429 Retry-After imposed.", labels=_DEST)
    families["guards"] = CounterMetricFamily(
        "opencdp_guard_warnings", "Guard warnings and refusals by rule code.", labels=["code"])
    families["idempotency"] = CounterMetricFamily(
        "opencdp_idempotency_suppressed", "Repeated calls the idempotency guard suppressed.")
    return families


class OpenCDPCollector(Collector):
    """Exposes one client's delivery metrics; register it once per client.

    Works with ``Client`` and ``AsyncClient``. Everything is read when Prometheus scrapes.
    """

    def __init__(self, client: Client | AsyncClient) -> None:
        if not callable(getattr(client, "stats", None)) or not callable(
                getattr(client, "health", None)):
            raise ConfigurationError(
                f"OpenCDPCollector needs an opencdp Client or AsyncClient, not "
                f"{type(client).__name__}"
            )
        self._client = client

    def __repr__(self) -> str:
        return f"OpenCDPCollector(destinations={list(self._client.stats().lanes)!r})"

    def describe(self) -> Iterable[Metric]:
        # Names only, so registering reads nothing from the client.
        return list(_families().values())

    def collect(self) -> Iterable[Metric]:
        health: Health | None
        try:
            health = self._client.health()
        except Exception as exc:
            # The counters still go out; the queue gauges need the outbox. Type only: a
            # storage error's text can carry a credential.
            logger.error("opencdp metrics: health snapshot failed: %s", type(exc).__name__)
            health = None
        stats = self._client.stats()
        families = _families()
        for name, lane in stats.lanes.items():
            labels = [name]
            counters = lane.counters
            for outcome, _, _ in _OUTCOMES:
                for kind, value in sorted(counters.by_kind[outcome].items()):
                    families[outcome].add_metric([name, kind], value)
            for status, value in sorted(counters.statuses.items()):
                families["requests"].add_metric([name, str(status)], value)
            if counters.failures:
                families["requests"].add_metric([name, "error"], counters.failures)
            families["latency"].add_metric(
                labels, list(_cumulative(counters.latency)), counters.latency_total)
            families["throttled"].add_metric(labels, lane.throttled)
            dest = health.destinations.get(name) if health is not None else None
            if dest is None:
                continue
            for reason, value in sorted(dest.dropped.items()):
                families["dropped"].add_metric([name, reason], value)
            families["circuit"].add_metric(labels, CIRCUIT_STATES.get(dest.circuit_state, 2))
            families["failures"].add_metric(labels, dest.failure_count)
            families["pending"].add_metric(labels, dest.pending)
            families["in_flight"].add_metric(labels, dest.in_flight)
            families["age"].add_metric(labels, dest.oldest_pending_age or 0.0)
            families["dead_letters"].add_metric(labels, dest.dead_letters)
            paused = dest.rate_limit.get("paused_for", 0.0)
            families["paused"].add_metric(labels, float(paused)
                                          if isinstance(paused, (int, float)) else 0.0)
        if health is not None:
            for code, value in sorted(health.guards.items()):
                families["guards"].add_metric([code], value)
            families["idempotency"].add_metric([], health.idempotency_suppressed)
        return list(families.values())


def _cumulative(slots: list[int]) -> Iterator[tuple[str, float]]:
    """Per-slot counts (the last slot is +Inf) as Prometheus's cumulative ``le`` buckets."""
    total = 0
    for bound, count in zip((*LATENCY_BUCKETS, float("inf")), slots, strict=True):
        total += count
        yield ("+Inf" if bound == float("inf") else repr(bound)), float(total)


def register(
    client: Client | AsyncClient, registry: CollectorRegistry | None = None
) -> OpenCDPCollector:
    """Register a collector for ``client`` (in the default registry unless one is given) and
    return it; ``registry.unregister(collector)`` removes it."""
    collector = OpenCDPCollector(client)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
