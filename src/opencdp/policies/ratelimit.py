"""Token bucket per destination, plus the pause a 429 with Retry-After imposes.

Spending tokens before sending keeps 429s rare instead of routine; the pause honours the
server when it still says "slow down". Pure: the clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import clock
from .keystore import Standby

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

    Wall-clock time (the engine's clock) is used, since the processes may be on different
    hosts. If Redis fails (down, paused, refusing writes at its memory limit), the bucket
    uses this process's local state, and leaves Redis alone for ``retry_after`` seconds
    before asking again, so a stalled server does not cost a client timeout per request.
    The client should be bounded (the Redis outbox's ``shared_state`` client is).
    """

    def __init__(self, redis_client: Any, key: str, rate: float | None,
                 burst: float | None = None, retry_after: float = 1.0) -> None:
        super().__init__(rate, burst, clock=clock.wall)
        self._redis = redis_client
        self.key = key
        self._take = redis_client.register_script(_SHARED_TAKE)
        self._pause = redis_client.register_script(_SHARED_PAUSE)
        self._standby = Standby(retry_after, clock.monotonic)
        self.fallbacks = 0

    def _shared(self, script: Any, args: list[str]) -> Any:
        """The script's answer, or None when Redis is unwell (counted in ``fallbacks``)."""
        if self._standby.ready():
            try:
                return script(keys=[self.key], args=args)
            except Exception:
                self._standby.failed()
        self.fallbacks += 1
        return None

    def pause(self, seconds: float) -> None:
        super().pause(seconds)  # the local pause holds whatever Redis does
        self._shared(self._pause, [repr(clock.wall() + seconds)])

    def take(self) -> float:
        if self.rate is None:
            return super().take()
        answer = self._shared(self._take, [repr(self.rate), repr(self.capacity),
                                           repr(clock.wall())])
        if answer is None:
            return super().take()
        wait = float(answer)
        if wait > 0:
            self.throttled += 1
        return wait
