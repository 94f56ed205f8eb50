"""The engine's one read-only view: what health, metrics, tracing and reconcile read.

Plain frozen copies taken on demand (``Dispatcher.snapshot()``, ``client.stats()``), so no
other module reaches into a lane, a breaker or a bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lane import LaneCounters

__all__ = ["EngineSnapshot", "LaneSnapshot"]


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
