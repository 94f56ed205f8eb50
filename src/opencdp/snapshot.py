"""The engine's one read-only view: what health, metrics, tracing and reconcile read.

Plain frozen copies taken on demand (``Dispatcher.snapshot()``, ``client.stats()``), so no
other module reaches into a lane, a breaker or a bucket. The counters and the latency
buckets are defined here, not in the lane that increments them: a reader needs their shape
(metrics builds its histogram from ``LATENCY_BUCKETS``) and should not import the engine to
get it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .outbox.base import Leased

__all__ = ["LATENCY_BUCKETS", "EngineSnapshot", "LaneCounters", "LaneSnapshot"]

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


@dataclass
class LaneCounters:
    """Plain counters, read at scrape or health time (nothing is pushed anywhere).

    ``by_kind[outcome][kind]`` counts messages per outcome (``dispatched`` when first
    leased, ``delivered``, ``retried``, ``dead``); ``latency`` counts requests per bucket of
    ``LATENCY_BUCKETS`` (not cumulative; the last slot is above the largest bound).
    """

    requests: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    failures: int = 0
    latency_total: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    by_kind: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: {} for k in ("dispatched", "delivered", "retried", "dead")}
    )
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    def count(self, outcome: str, items: list[Leased]) -> None:
        table = self.by_kind[outcome]
        for item in items:
            kind = item.message.kind
            table[kind] = table.get(kind, 0) + 1

    def observe(self, seconds: float) -> None:
        self.requests += 1
        self.latency_total += seconds
        self.latency[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def copy(self) -> LaneCounters:
        return LaneCounters(
            self.requests, self.delivered, self.retried, self.dead, self.failures,
            self.latency_total, dict(self.statuses),
            {k: dict(v) for k, v in self.by_kind.items()}, list(self.latency),
        )



@dataclass(frozen=True, slots=True)
class LaneSnapshot:
    """One destination's engine state at one moment (copies; safe to keep)."""

    destination: str
    counters: LaneCounters
    circuit_state: str
    failure_count: int
    last_failure: float | None
    last_failure_reason: str | None
    failing: bool
    inflight: int
    rate_limit: dict[str, object]
    throttled: int
    since_progress: float = 0.0
    """Seconds since the lane last delivered or dead-lettered something, or found nothing to
    do (monotonic)."""
    errors_since_progress: int = 0
    """Turns that failed (queue errors, internal errors) since then."""
    last_error: str | None = None
    """The last of those errors, scrubbed of secrets."""
    hold: str | None = None
    """The hold mark's state (``held``, ``draining``, ``released``, ``finished``) when the
    destination is in hold mode, else None."""
    hold_since: float | None = None
    """Wall-clock seconds when the hold began."""
    hold_purged: int = 0
    """Held copies this client purged (retention, or after the hold finished)."""


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    lanes: dict[str, LaneSnapshot]
    restarts: int
    internal_errors: dict[str, int]
    running: bool
