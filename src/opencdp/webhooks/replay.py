"""Replay protection: remember which webhook ``event_id`` values were already accepted.

The store is a one-method protocol so that several processes can share one. The default lives
in memory, is bounded in size and time, and is enough for a single process; ``RedisReplayStore``
(``SET key 1 NX PX ttl``, atomic on the server) serves several.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError

__all__ = ["MemoryReplayStore", "RedisReplayStore", "ReplayStore"]


@runtime_checkable
class ReplayStore(Protocol):
    """Where accepted event ids are remembered. Called on the request path, so keep it fast."""

    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False if it is already remembered (a replay).

        Must be atomic: of two concurrent calls with the same key, only one returns True.
        """
        ...


class MemoryReplayStore:
    """Event ids in a dict, oldest evicted first once ``max_entries`` is reached.

    Eviction only loses protection for the oldest ids; ``evicted`` counts how often that
    happened, so a store that is too small shows up in monitoring rather than as silent replays.
    """

    def __init__(
        self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ConfigurationError("max_entries must be at least 1")
        self._max = max_entries
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def add(self, key: str, ttl: float) -> bool:
        now = self._clock()
        with self._lock:
            self._purge(now)
            expires = self._expiry.get(key)
            if expires is not None and expires > now:
                return False
            self._expiry.pop(key, None)
            while len(self._expiry) >= self._max:
                self._expiry.popitem(last=False)
                self.evicted += 1
            self._expiry[key] = now + ttl
            return True

    def _purge(self, now: float) -> None:
        # Entries are in insertion order; with one ttl that is also expiry order, so the scan
        # stops at the first live entry. A longer-lived entry in front only delays purging.
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now:
                return
            del self._expiry[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def __repr__(self) -> str:
        return f"MemoryReplayStore(max_entries={self._max}, size={len(self._expiry)})"


class RedisReplayStore:
    """Event ids in Redis, shared by every process that serves the endpoint.

    ``redis`` is a ``redis.Redis`` client (or anything with its ``set(..., nx=, px=)``); Redis
    errors propagate, and the handler then accepts the event and logs the failure.
    """

    def __init__(self, redis: Any, *, prefix: str = "opencdp:webhooks:seen:") -> None:
        self._redis = redis
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "opencdp:webhooks:seen:") -> RedisReplayStore:
        """Connect lazily to ``redis://host:port/db`` (needs the ``redis`` extra).

        Timeouts are short because the store is asked on the request path, inside the 4 s
        Customer.io waits for an answer.
        """
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                "RedisReplayStore needs the redis package: pip install 'opencdp[redis]'"
            ) from None
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        return cls(client, prefix=prefix)

    def add(self, key: str, ttl: float) -> bool:
        millis = max(1, int(ttl * 1000))
        return bool(self._redis.set(self._prefix + key, b"1", nx=True, px=millis))

    def __repr__(self) -> str:
        return f"RedisReplayStore(prefix={self._prefix!r})"
