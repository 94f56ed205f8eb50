"""What the engine does after an exchange: the one place where outcomes become actions.

Pure functions of plain data and an injected clock and random source, so every rule here
is unit-tested without sockets: what an exchange tells the circuit breaker, and what a
``Retry`` outcome becomes (back to the queue at a time, dead-lettered for an exhausted
budget, and whether the whole lane pauses because the destination is saturated).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import RetryConfig
from ..destinations.base import Retry
from ..outbox.base import Leased, RetryItem
from ..wire import Failure, Response
from .retry import exhausted, retry_at

__all__ = ["PAUSE_AFTER_429S", "RECENT_RESPONSES", "RetryPlan", "Signal", "plan_retry", "signal"]

RECENT_RESPONSES = 10
PAUSE_AFTER_429S = 5
"""Of the last ``RECENT_RESPONSES`` answers, this many 429s mean the destination is
saturated: the lane pauses instead of delaying only the refused messages."""


@dataclass(frozen=True, slots=True)
class Signal:
    """What one exchange tells the breaker. ``refused`` marks credentials refused (401/403):
    the request was answered, but nothing will get through until the configuration changes."""

    failure: bool
    reason: str | None = None
    throttled: bool = False
    refused: bool = False


def signal(result: Response | Failure) -> Signal:
    """A 429 is a success for the breaker (the service is up; the pace is the bucket's
    business); 5xx, 408, transport failures and refused credentials are failures."""
    if isinstance(result, Failure):
        return Signal(True, result.reason)
    status = result.status
    if status == 429:
        return Signal(False, throttled=True)
    if status >= 500 or status == 408:
        return Signal(True, f"HTTP {status}")
    if status in (401, 403):
        return Signal(True, f"HTTP {status}: credentials refused", refused=True)
    return Signal(False)


@dataclass(slots=True)
class RetryPlan:
    again: list[RetryItem] = field(default_factory=list)
    retried: list[Leased] = field(default_factory=list)
    expired: list[Leased] = field(default_factory=list)
    pause: float | None = None


def plan_retry(
    outcome: Retry,
    now: float,
    config: RetryConfig,
    *,
    probing: bool = False,
    recent_429s: int = 0,
    rand: Callable[[], float] = random.random,
) -> RetryPlan:
    """Reschedule ``outcome``'s messages with jittered backoff (never before Retry-After).

    A failed half-open probe and a 429 keep the attempt count: the messages are not at
    fault. The budget's age counts from when a message entered the outbox, never from the
    event's own time (a backfilled event id may be a year old).
    """
    plan = RetryPlan()
    if outcome.status == 429:
        probing = True
        if outcome.after and recent_429s >= PAUSE_AFTER_429S:
            plan.pause = outcome.after
    for item in outcome.items:
        attempt = item.attempt if probing else item.attempt + 1
        entered = item.enqueued_at or now
        if not probing and exhausted(attempt, entered, now, config):
            plan.expired.append(item)
            continue
        plan.retried.append(item)
        plan.again.append(RetryItem(item.message.id,
                                    retry_at(max(attempt, 1), now, config, outcome.after, rand),
                                    outcome.reason, attempt))
    return plan
