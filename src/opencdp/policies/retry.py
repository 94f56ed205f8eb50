"""When to try a failed delivery again, and when to stop.

Retry means reschedule, not sleep: the lane puts a failed message back in the outbox with a
not-before time and moves on, so one destination's trouble never holds the other's lane.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable
from typing import Literal

from ..config import RetryConfig
from ..outbox.base import MAX_AHEAD

__all__ = ["Verdict", "backoff", "classify_status", "exhausted", "parse_retry_after", "retry_at"]

Verdict = Literal["ok", "retry", "dead"]


def classify_status(status: int) -> Verdict:
    """2xx delivered; 408, 429 and 5xx (Cloudflare's 52x included) retried; other 4xx and
    3xx (redirects are never followed) are permanent."""
    if 200 <= status < 300:
        return "ok"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "dead"


def backoff(attempt: int, config: RetryConfig, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: ``uniform(0, min(max_delay, base_delay * 2 ** attempt))``.

    ``attempt`` counts the failures so far (1 after the first). Full jitter spreads a herd of
    clients that failed together over the whole window instead of a band at its top.
    """
    ceiling = min(config.max_delay, config.base_delay * (2.0 ** min(attempt, 62)))
    return ceiling * rand()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now
    if math.isnan(seconds) or seconds < 0:
        return 0.0
    return min(seconds, MAX_AHEAD)


def retry_at(
    attempt: int,
    now: float,
    config: RetryConfig,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """The not-before time of the next attempt: jittered backoff, but never before the
    server's Retry-After, and never further ahead than ``MAX_AHEAD`` (a queue treats a time
    beyond it as written under a clock that has since stepped back)."""
    delay = backoff(attempt, config, rand)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + min(delay, MAX_AHEAD)


def exhausted(attempt: int, created: float, now: float, config: RetryConfig) -> bool:
    """True once ``attempt`` failures were made or the message is older than ``max_age``."""
    return attempt >= config.max_attempts or now - created >= config.max_age
