"""Remember a key once within a TTL, in this process's memory or in Redis.

Both the idempotency guard (event ids, ``Idempotency-Key``) and webhook replay protection
(``event_id``) ask the same question, "is this the first time within the window?", and both
must be able to take the answer back when the work it guarded failed. ``claim`` is atomic:
of two concurrent claims of one key, exactly one wins, in one process (a lock) or across
processes (Redis ``SET NX PX``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..errors import ConfigurationError, ValidationError

__all__ = ["KeyStore", "MemoryKeyStore", "RedisKeyStore", "Standby"]

_R = TypeVar("_R", bound="RedisKeyStore")


def _ttl_ms(ttl: float) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise ConfigurationError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return max(1, int(ttl * 1000))


def _checked(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ValidationError(f"a key must be a non-empty string, not {type(key).__name__}",
                              field="key")
    return key


class Standby:
    """How long to leave a shared store alone after it failed.

    A paused or full Redis fails each call only after the client's timeout; asking it again
    on every call would add that timeout to every call. After a failure the callers use
    their local state for ``retry_after`` seconds, so an outage costs one timeout per
    ``retry_after``, and the store is back in use within ``retry_after`` of recovering.
    """

    __slots__ = ("_clock", "_until", "retry_after")

    def __init__(self, retry_after: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = retry_after
        self._clock = clock
        self._until = 0.0

    def ready(self) -> bool:
        return self._clock() >= self._until

    def failed(self) -> None:
        self._until = self._clock() + self.retry_after


@runtime_checkable
class KeyStore(Protocol):
    """Where claimed keys are remembered. Called on a request or call path: keep it fast."""

    def claim(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False when it is already remembered."""
        ...

    def release(self, key: str) -> None:
        """Forget ``key`` so that the next claim wins (the guarded work did not happen)."""
        ...


class MemoryKeyStore:
    """Keys in a dict, oldest evicted first once ``max_entries`` is reached.

    Eviction only loses protection for the oldest keys; ``evicted`` counts how often that
    happened, so a store that is too small shows up in monitoring rather than as silent
    repeats.
    """

    def __init__(
        self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("max_entries must be an integer of at least 1")
        self._max = max_entries
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def claim(self, key: str, ttl: float) -> bool:
        _checked(key)
        _ttl_ms(ttl)
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

    def release(self, key: str) -> None:
        with self._lock:
            self._expiry.pop(key, None)

    def holds(self, key: str) -> bool:
        """Whether ``key`` is remembered, without claiming it."""
        with self._lock:
            expires = self._expiry.get(key)
            return expires is not None and expires > self._clock()

    def _purge(self, now: float) -> None:
        # Insertion order is expiry order under one TTL, so the scan stops at the first live
        # key; a longer-lived key in front only delays purging.
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now:
                return
            del self._expiry[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_entries={self._max}, size={len(self._expiry)})"


class RedisKeyStore:
    """Keys in Redis (``SET key 1 NX PX ttl``, released with ``DEL``), shared by every
    process that uses the same server and prefix.

    ``redis`` is a ``redis.Redis`` client (or anything with its ``set(..., nx=, px=)`` and
    ``delete``). Redis errors propagate: each caller decides whether to fail open. A claim
    waits as long as the client's ``socket_timeout``: on a call path, give it a client whose
    timeout that path can afford (the Redis outbox's ``shared_state`` is bounded by the
    queue's ``queue_timeout``).
    """

    default_prefix = "opencdp:keys:"

    def __init__(self, redis: Any, *, prefix: str | None = None) -> None:
        prefix = self.default_prefix if prefix is None else prefix
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a string")
        self._redis = redis
        self._prefix = prefix

    @classmethod
    def from_url(cls: type[_R], url: str, *, prefix: str | None = None) -> _R:
        """Connect lazily to ``redis://host:port/db`` (needs the ``redis`` extra).

        Timeouts are short because a claim is made on a request path.
        """
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                f"{cls.__name__} needs the redis package: pip install 'opencdp[redis]'"
            ) from None
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        return cls(client, prefix=prefix)

    @property
    def prefix(self) -> str:
        return self._prefix

    def claim(self, key: str, ttl: float) -> bool:
        name, millis = self._prefix + _checked(key), _ttl_ms(ttl)
        return bool(self._redis.set(name, b"1", nx=True, px=millis))

    def release(self, key: str) -> None:
        self._redis.delete(self._prefix + _checked(key))

    def __repr__(self) -> str:
        # The connection (and any password in its URL) stays out of the repr.
        return f"{type(self).__name__}(prefix={self._prefix!r})"
