"""Token bucket per destination, plus the pause a 429 with Retry-After imposes.

Spending tokens before sending keeps 429s rare instead of routine; the pause honours the
server when it still says "slow down". Pure: the clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["SharedTokenBucket", "TokenBucket"]


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


_SHARED_TAKE = """
local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp', 'paused')
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tokens = tonumber(b[1]) or cap
local stamp = tonumber(b[2]) or now
local paused = tonumber(b[3]) or 0
if now < paused then return tostring(paused - now) end
tokens = math.min(cap, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""
_SHARED_PAUSE = """
local until_ = tonumber(ARGV[1])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused')) or 0
if until_ > paused then redis.call('HSET', KEYS[1], 'paused', tostring(until_)) end
redis.call('EXPIRE', KEYS[1], 3600)
return 1
"""


class SharedTokenBucket(TokenBucket):
    """The same bucket kept in Redis, so every process delivering to a destination shares one
    budget (a pool of workers stays under Customer.io's 100 requests/s together).

    Wall-clock time is used, since the processes may be on different hosts. If Redis fails,
    the bucket falls back to this process's local state until it answers again.
    """

    def __init__(self, redis_client: Any, key: str, rate: float | None,
                 burst: float | None = None) -> None:
        super().__init__(rate, burst, clock=time.time)
        self._redis = redis_client
        self.key = key
        self._take = redis_client.register_script(_SHARED_TAKE)
        self._pause = redis_client.register_script(_SHARED_PAUSE)
        self.fallbacks = 0

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        try:
            self._pause(keys=[self.key], args=[repr(time.time() + seconds)])
        except Exception:  # redis down: the local pause still holds
            self.fallbacks += 1

    def take(self) -> float:
        if self.rate is None:
            return super().take()
        try:
            wait = float(self._take(keys=[self.key],
                                    args=[repr(self.rate), repr(self.capacity),
                                          repr(time.time())]))
        except Exception:
            self.fallbacks += 1
            return super().take()
        if wait > 0:
            self.throttled += 1
        return wait
