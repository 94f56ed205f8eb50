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
from .keystore import KeyStore, MemoryKeyStore, RedisKeyStore

__all__ = ["IdempotencyGuard", "SharedIdempotencyGuard"]


class IdempotencyGuard:
    """Keys claimed in ``store`` (this process's memory by default) for ``ttl`` seconds.

    When a shared store fails (Redis down), the guard claims in its own memory instead and
    counts ``fallbacks``: a repeat across processes may then pass, but no call is refused or
    delayed because the guard's storage is unwell.
    """

    def __init__(
        self,
        ttl: float = 300.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        *,
        store: KeyStore | None = None,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ConfigurationError(f"idempotency ttl must be > 0 seconds, not {ttl!r}")
        self.ttl = float(ttl)
        self._local = MemoryKeyStore(max_entries, clock=clock)
        self._store: KeyStore = self._local if store is None else store
        self._lock = threading.Lock()
        self.suppressed = 0
        self.fallbacks = 0

    @property
    def store(self) -> KeyStore:
        return self._store

    def claim(self, key: str) -> bool:
        """True the first time ``key`` is claimed within the TTL; False for a repeat, which
        is counted in ``suppressed``."""
        if self._store is self._local:
            first = self._local.claim(key, self.ttl)
        else:
            try:
                first = self._store.claim(key, self.ttl)
            except ValidationError:
                raise
            except Exception:  # the shared store is down: remember locally instead
                with self._lock:
                    self.fallbacks += 1
                first = self._local.claim(key, self.ttl)
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
                with self._lock:
                    self.fallbacks += 1

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(ttl={self.ttl}, store={self._store!r}, "
                f"suppressed={self.suppressed})")


class SharedIdempotencyGuard(IdempotencyGuard):
    """The guard kept in Redis under ``prefix`` (``SET key NX PX ttl``, ``DEL`` to release),
    so a retried job on another worker is recognised too."""

    def __init__(self, redis_client: Any, prefix: str, ttl: float = 300.0,
                 max_entries: int = 100_000) -> None:
        super().__init__(ttl, max_entries, store=RedisKeyStore(redis_client, prefix=prefix))
