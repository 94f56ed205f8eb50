"""Token bucket per destination, plus the pause a 429 with Retry-After imposes.

Spending tokens before sending keeps 429s rare instead of routine; the pause honours the
server when it still says "slow down". Pure: the clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    def __init__(
        self,
        rate: float | None,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else (max(1.0, rate) if rate else 0.0)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self.paused_until = 0.0
        self.throttled = 0

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    def take(self) -> float:
        """Spend one token; return 0.0, or the seconds to wait before trying again."""
        now = self._clock()
        if now < self.paused_until:
            return self.paused_until - now
        if self.rate is None:
            return 0.0
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        self.throttled += 1
        return (1.0 - self._tokens) / self.rate

    def to_dict(self) -> dict[str, object]:
        now = self._clock()
        return {
            "rate_per_second": self.rate,
            "paused_for": round(max(0.0, self.paused_until - now), 3),
            "throttled": self.throttled,
        }
