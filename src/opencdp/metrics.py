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
opencdp_queue_held                             gauge      destination (copies held in hold
                                                          mode; 0 when not held)
opencdp_rate_limit_throttled_total             counter    destination
opencdp_rate_limit_paused_seconds              gauge      destination
opencdp_guard_warnings_total                   counter    code
opencdp_idempotency_suppressed_total           counter
=============================================  =========  ===============================

Several worker processes (``uvicorn --workers N``, gunicorn): each has its own client, and a
scrape reaches one of them. prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``)
adds up values written to files through its own metric objects, never a custom collector's, so
``MultiprocessWriter`` copies a client's snapshot into such objects: counters and the latency
histogram as increments (the files of every process, dead ones included, are summed, as a
counter must be), gauges set to the current value in ``live`` modes (a dead process's are
removed by ``mark_process_dead``): ``livemax`` for the breaker and the oldest age (the worst
worker), and for the queue gauges of a shared durable queue (SQLite, Redis: every worker counts
the same rows), ``livesum`` for those of per-process memory queues. Each worker writes
periodically and when it answers a scrape; ``multiprocess_registry()`` is what to serve. A
scrape is therefore exact for the answering worker and at most one period old for the others.
"""

from __future__ import annotations

import logging
import os
import threading
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

from .snapshot import LATENCY_BUCKETS

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .health import Health

__all__ = ["CIRCUIT_STATES", "MultiprocessWriter", "OpenCDPCollector", "multiprocess_dir",
           "multiprocess_registry", "register"]

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
_HELD_DOC = ("Copies queued for this destination and held (send_to_customer_io='hold'): "
             "not sent until `opencdp migrate rollback`; 0 when not held.")

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
    families["held"] = GaugeMetricFamily(
        "opencdp_queue_held", _HELD_DOC, labels=_DEST)
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
        """The metric families by name only, so registering reads nothing from the client."""
        return list(_families().values())

    def collect(self) -> Iterable[Metric]:
        """The client's counters and its queue's gauges, read at scrape time."""
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
            families["held"].add_metric(labels, dest.held_count)
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


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR``, or None when unset or empty."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def multiprocess_registry() -> CollectorRegistry:
    """A registry aggregating every process's files in ``multiprocess_dir()``: what a
    ``/metrics`` of a multi-worker server serves (the app's own metrics objects included)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    path = multiprocess_dir()
    if path is None:
        raise ConfigurationError("multiprocess_registry() needs PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


_Key = tuple[str, tuple[str, ...]]


class MultiprocessWriter:
    """Copies one client's metrics into prometheus_client's multiprocess files for this
    process; ``write()`` periodically and before answering a scrape, ``close()`` at the
    worker's exit (a last write, then ``mark_process_dead`` for this pid).

    Needs ``PROMETHEUS_MULTIPROC_DIR`` set before prometheus_client was first imported (that is
    when prometheus_client chooses file-backed values). Thread-safe.
    """

    def __init__(self, client: Client | AsyncClient) -> None:
        from prometheus_client import Counter, Gauge, Histogram, values

        if multiprocess_dir() is None:
            raise ConfigurationError("MultiprocessWriter needs PROMETHEUS_MULTIPROC_DIR")
        if values.ValueClass is values.MutexValue:
            raise ConfigurationError(
                "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: set it "
                "in the server's environment")
        OpenCDPCollector(client)  # the same check of what was passed
        self._client = client
        self._lock = threading.Lock()
        self._written: dict[_Key, float] = {}
        shared = str(client.config.queue).split(":", 1)[0] != "memory"
        queue_mode: Any = "livemax" if shared else "livesum"
        counters: dict[str, Any] = {}
        for outcome, name, doc in _OUTCOMES:
            counters[outcome] = Counter(f"opencdp_{name}", doc, ["destination", "kind"],
                                        registry=None)
        for key, name, doc, labels in (
            ("dropped", "messages_dropped", "Messages dropped by a full in-memory queue's "
             "policy.", ["destination", "reason"]),
            ("requests", "requests", "Delivery requests by HTTP status ('error' when no "
             "response came).", ["destination", "status"]),
            ("throttled", "rate_limit_throttled", "Times the token bucket made the lane wait.",
             _DEST),
            ("guards", "guard_warnings", "Guard warnings and refusals by rule code.", ["code"]),
            ("idempotency", "idempotency_suppressed",
             "Repeated calls the idempotency guard suppressed.", []),
        ):
            counters[key] = Counter(f"opencdp_{name}", doc, labels, registry=None)
        self._counters = counters
        self._latency = Histogram(
            "opencdp_request_duration_seconds", "Delivery request duration, send to response.",
            _DEST, buckets=LATENCY_BUCKETS, registry=None)
        self._gauges: dict[str, Any] = {}
        mode: Any
        for key, name, doc, mode in (
            ("circuit", "circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
             "livemax"),
            ("failures", "circuit_failures",
             "Consecutive failed requests counted by the breaker.", "livemax"),
            ("pending", "queue_pending", "Messages waiting in the outbox for this destination.",
             queue_mode),
            ("in_flight", "queue_in_flight", "Messages leased to a delivery request right now.",
             queue_mode),
            ("age", "queue_oldest_pending_age_seconds",
             "Age of the oldest pending message (0 when none is pending).", "livemax"),
            ("dead_letters", "dead_letters", "Dead letters stored for this destination.",
             queue_mode),
            ("held", "queue_held", _HELD_DOC, queue_mode),
            ("paused", "rate_limit_paused_seconds",
             "Seconds left of a pause a 429 Retry-After imposed.", "livemax"),
        ):
            self._gauges[key] = Gauge(f"opencdp_{name}", doc, _DEST, registry=None,
                                      multiprocess_mode=mode)

    def _add(self, key: str, labels: tuple[str, ...], value: float) -> None:
        """Add what ``value`` grew by since the last write to the file's counter."""
        delta = self._grown((key, labels), value)
        if delta > 0:
            counter = self._counters[key]
            (counter.labels(*labels) if labels else counter).inc(delta)

    def _grown(self, seen: _Key, value: float) -> float:
        """How much ``value`` exceeds what was written for ``seen`` (never less: a counter
        only grows), recording it as written."""
        delta = value - self._written.get(seen, 0.0)
        if delta > 0:
            self._written[seen] = value
        return delta

    def write(self) -> None:
        """This process's current values into its files."""
        with self._lock:  # read and written together: an older snapshot never lands last
            self._write()

    def _write(self) -> None:
        try:
            health: Health | None = self._client.health()
        except Exception as exc:
            logger.error("opencdp metrics: health snapshot failed: %s", type(exc).__name__)
            health = None
        stats = self._client.stats()
        for name, lane in stats.lanes.items():
            counters = lane.counters
            for outcome, _, _ in _OUTCOMES:
                for kind, value in counters.by_kind[outcome].items():
                    self._add(outcome, (name, kind), value)
            for status, value in counters.statuses.items():
                self._add("requests", (name, str(status)), value)
            if counters.failures:
                self._add("requests", (name, "error"), counters.failures)
            self._add("throttled", (name,), lane.throttled)
            self._add_latency(name, counters.latency, counters.latency_total)
            dest = health.destinations.get(name) if health is not None else None
            if dest is None:
                continue
            for reason, value in dest.dropped.items():
                self._add("dropped", (name, reason), value)
            paused = dest.rate_limit.get("paused_for", 0.0)
            for key, gauge_value in (
                ("circuit", CIRCUIT_STATES.get(dest.circuit_state, 2)),
                ("failures", dest.failure_count), ("pending", dest.pending),
                ("in_flight", dest.in_flight), ("age", dest.oldest_pending_age or 0.0),
                ("dead_letters", dest.dead_letters), ("held", dest.held_count),
                ("paused", float(paused) if isinstance(paused, (int, float)) else 0.0),
            ):
                self._gauges[key].labels(name).set(gauge_value)
        if health is not None:
            for code, value in health.guards.items():
                self._add("guards", (code,), value)
            self._add("idempotency", (), health.idempotency_suppressed)

    def _add_latency(self, name: str, slots: list[int], total: float) -> None:
        # prometheus_client's Histogram has no public "add n to this bucket": its per-bucket
        # values (stored per slot, made cumulative by MultiProcessCollector) take the growth.
        child = self._latency.labels(name)
        for i, count in enumerate(slots):
            delta = self._grown((f"latency:{i}", (name,)), count)
            if delta > 0:
                child._buckets[i].inc(delta)
        delta = self._grown(("latency:sum", (name,)), total)
        if delta > 0:
            child._sum.inc(delta)

    def close(self) -> None:
        """The last write, then this pid's live gauges removed (the process is leaving)."""
        from prometheus_client.multiprocess import mark_process_dead

        try:
            self.write()
        finally:
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
