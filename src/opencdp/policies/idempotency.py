"""Accept an operation once within a time window, like the reliability guide's guard.

Keys are an explicit event id, or a hash of kind + ids + data. Memory is bounded: the oldest
keys are evicted first (insertion order), so a burst cannot grow it without limit.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import orjson

__all__ = ["IdempotencyGuard", "content_key"]


def content_key(
    kind: str, identifier: str, name: str | None, data: Mapping[str, Any] | None
) -> str:
    raw = orjson.dumps(
        [kind, identifier, name, data],
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        default=repr,
    )
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class IdempotencyGuard:
    def __init__(
        self,
        ttl: float = 300.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.suppressed = 0

    def first(self, key: str) -> bool:
        """True the first time ``key`` is offered within the TTL; False for a repeat."""
        now = self._clock()
        with self._lock:
            seen_at = self._seen.get(key)
            if seen_at is not None and now - seen_at < self.ttl:
                self.suppressed += 1
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return True


class SharedIdempotencyGuard(IdempotencyGuard):
    """The same guard kept in Redis (``SET key NX PX ttl``), so a retried job on another
    worker is recognised too. Falls back to this process's memory if Redis fails."""

    def __init__(self, redis_client: Any, prefix: str, ttl: float = 300.0,
                 max_entries: int = 100_000) -> None:
        super().__init__(ttl, max_entries)
        self._redis = redis_client
        self.prefix = prefix
        self.fallbacks = 0

    def first(self, key: str) -> bool:
        try:
            stored = self._redis.set(self.prefix + key, b"1", nx=True,
                                     px=max(1, int(self.ttl * 1000)))
        except Exception:  # redis down: remember locally instead
            self.fallbacks += 1
            return super().first(key)
        if not stored:
            with self._lock:
                self.suppressed += 1
        return bool(stored)
