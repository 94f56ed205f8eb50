"""A typed snapshot of delivery health, per destination and overall.

Built on demand from the lanes (breaker, bucket, counters), the outbox's counts and the guards'
counters; nothing is tracked twice. Failure reasons pass through ``scrub`` so a server that
echoes a credential cannot leak it into a health page.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .dispatch import Dispatcher

__all__ = ["DestinationHealth", "Health", "scrub", "snapshot"]

Status = Literal["ok", "degraded", "down"]


def scrub(text: str | None, secrets: Iterable[str | None]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text


@dataclass(frozen=True, kw_only=True)
class DestinationHealth:
    name: str
    circuit_state: str
    failure_count: int
    last_failure: str | None
    last_failure_reason: str | None
    pending: int
    in_flight: int
    oldest_pending_age: float | None
    dead_letters: int
    dropped: dict[str, int]
    rate_limit: dict[str, object]
    requests: int
    delivered: int
    retried: int
    failed: int
    avg_latency_ms: float | None

    @property
    def healthy(self) -> bool:
        return self.circuit_state == "CLOSED"

    def to_dict(self) -> dict[str, Any]:
        return {
            "circuit_state": self.circuit_state,
            "failure_count": self.failure_count,
            "last_failure": self.last_failure,
            "last_failure_reason": self.last_failure_reason,
            "queue": {
                "pending": self.pending,
                "in_flight": self.in_flight,
                "oldest_pending_age": self.oldest_pending_age,
                "dead_letters": self.dead_letters,
                "dropped": dict(self.dropped),
            },
            "rate_limit": dict(self.rate_limit),
            "counters": {
                "requests": self.requests,
                "delivered": self.delivered,
                "retried": self.retried,
                "failed": self.failed,
            },
            "avg_latency_ms": self.avg_latency_ms,
        }


@dataclass(frozen=True, kw_only=True)
class Health:
    status: Status
    destinations: dict[str, DestinationHealth]
    guards: dict[str, int] = field(default_factory=dict)
    idempotency_suppressed: int = 0
    taken_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "destinations": {k: v.to_dict() for k, v in self.destinations.items()},
            "guards": dict(self.guards),
            "idempotency_suppressed": self.idempotency_suppressed,
            "taken_at": self.taken_at,
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def snapshot(
    engine: Dispatcher,
    guards: dict[str, int] | None = None,
    idempotency_suppressed: int = 0,
    secrets: Iterable[str | None] = (),
) -> Health:
    now = time.time()
    secrets = tuple(secrets)
    queue = engine.outbox.stats(now)
    out: dict[str, DestinationHealth] = {}
    for name in engine.destinations:
        lane = engine.lanes.get(name)
        stats = queue.get(name)
        counters = lane.counters if lane is not None else None
        breaker = lane.breaker if lane is not None else None
        requests = counters.requests if counters else 0
        out[name] = DestinationHealth(
            name=name,
            circuit_state=breaker.state if breaker else "CLOSED",
            failure_count=breaker.failure_count if breaker else 0,
            last_failure=_iso(breaker.last_failure) if breaker else None,
            last_failure_reason=scrub(breaker.last_failure_reason, secrets) if breaker else None,
            pending=stats.pending if stats else 0,
            in_flight=stats.in_flight if stats else 0,
            oldest_pending_age=stats.oldest_pending_age if stats else None,
            dead_letters=stats.dead if stats else 0,
            dropped=dict(stats.dropped) if stats else {},
            rate_limit=lane.bucket.to_dict() if lane is not None else {},
            requests=requests,
            delivered=counters.delivered if counters else 0,
            retried=counters.retried if counters else 0,
            failed=counters.dead if counters else 0,
            avg_latency_ms=(
                round(counters.latency_total / requests * 1000, 2)
                if counters and requests else None
            ),
        )
    opencdp = out.get("opencdp")
    status: Status = "ok"
    if opencdp is not None and not opencdp.healthy:
        status = "down"
    elif any(not d.healthy for d in out.values()):
        status = "degraded"
    return Health(
        status=status,
        destinations=out,
        guards=dict(guards or {}),
        idempotency_suppressed=idempotency_suppressed,
        taken_at=now,
    )
