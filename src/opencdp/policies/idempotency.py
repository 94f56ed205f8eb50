"""Accept an operation once per identity within a time window, like the reliability guide's
guard, and take the acceptance back when the write it guarded failed.

Identity only: an event id (the ULID the client assigns, a caller's ``event_id``) or a
relay's ``Idempotency-Key``. Never a hash of the content: two identical ``identify`` calls
are two state changes (A, B, A must end on A), not a repeat.

``release`` exists for the caller's retry: a ``track(..., event_id=X)`` whose write to the
outbox raised must be accepted when the caller tries again, so the claim is forgotten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError, ValidationError
from .keystore import KeyStore, MemoryKeyStore, RedisKeyStore, Standby

__all__ = ["IdempotencyGuard", "SharedIdempotencyGuard"]


class IdempotencyGuard:
    """Keys claimed in ``store`` (this process's memory by default) for ``ttl`` seconds.

    When a shared store fails (Redis down, paused, slower than its client's timeout, or
    refusing writes at its memory limit), the claim counts as "not claimed by someone else":
    the guard claims in its own memory instead, the call goes on, and ``fallbacks`` counts
    it. Failing open is the choice because the guard only saves work: the queued message
    keeps its event id, so a repeat that passes while Redis is unwell (a retried job on
    another worker) is still recognised by Customer.io, which deduplicates by event id,
    whereas refusing or holding the call would lose or delay a first-time event. An
    unanswered ``SET NX`` may still be applied by the server later; that only makes a retry
    of the same event look like a repeat, which is what it is. After a failure the shared
    store is left alone for ``retry_after`` seconds (see ``keystore.Standby``), so a stalled
    server costs one client timeout per ``retry_after``, not one per call.
    """

    def __init__(
        self,
        ttl: float = 300.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        *,
        store: KeyStore | None = None,
        retry_after: float = 1.0,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ConfigurationError(f"idempotency ttl must be > 0 seconds, not {ttl!r}")
        self.ttl = float(ttl)
        self._local = MemoryKeyStore(max_entries, clock=clock)
        self._store: KeyStore = self._local if store is None else store
        self._standby = Standby(retry_after, clock)
        self._lock = threading.Lock()
        self.suppressed = 0
        self.fallbacks = 0

    @property
    def store(self) -> KeyStore:
        return self._store

    def claim(self, key: str) -> bool:
        """True the first time ``key`` is claimed within the TTL; False for a repeat, which
        is counted in ``suppressed``."""
        first: bool | None = None
        if self._store is not self._local and self._standby.ready():
            try:
                first = self._store.claim(key, self.ttl)
            except ValidationError:
                raise
            except Exception:
                self._standby.failed()
        if first is None:
            if self._store is not self._local:
                with self._lock:
                    self.fallbacks += 1
            first = self._local.claim(key, self.ttl)
        elif first and self._local.holds(key):
            first = False  # claimed here while the shared store was unwell
        if not first:
            with self._lock:
                self.suppressed += 1
        return first

    def release(self, key: str) -> None:
        """Forget a claim whose write failed, so the caller's retry is accepted. Never
        raises: a release that cannot reach the shared store is counted in ``fallbacks``."""
        self._local.release(key)
        if self._store is not self._local:
            try:
                self._store.release(key)
            except Exception:
                self._standby.failed()
                with self._lock:
                    self.fallbacks += 1

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(ttl={self.ttl}, store={self._store!r}, "
                f"suppressed={self.suppressed})")


class SharedIdempotencyGuard(IdempotencyGuard):
    """The guard kept in Redis under ``prefix`` (``SET key NX PX ttl``, ``DEL`` to release),
    so a retried job on another worker is recognised too.

    It runs on the caller's thread before the ``put``: ``redis_client`` must be bounded as
    the put is (the Redis outbox's ``shared_state`` client waits at most ``queue_timeout``
    and never retries inside redis-py)."""

    def __init__(self, redis_client: Any, prefix: str, ttl: float = 300.0,
                 max_entries: int = 100_000) -> None:
        super().__init__(ttl, max_entries, store=RedisKeyStore(redis_client, prefix=prefix))
