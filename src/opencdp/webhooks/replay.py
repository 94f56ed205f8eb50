"""Replay protection: remember which webhook ``event_id`` values were already accepted.

The store is a one-method protocol so that several processes can share one. Both stores are
the SDK's one TTL key store (``opencdp.policies.keystore``) under the webhook's names: the
default lives in memory, bounded in size and time, enough for a single process;
``RedisReplayStore`` (``SET key 1 NX PX ttl``, atomic on the server) serves several.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..policies.keystore import MemoryKeyStore, RedisKeyStore

__all__ = ["MemoryReplayStore", "RedisReplayStore", "ReplayStore"]

@runtime_checkable
class ReplayStore(Protocol):
    """Where accepted event ids are remembered. Called on the request path, so keep it fast."""

    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False if it is already remembered (a replay).

        Must be atomic: of two concurrent calls with the same key, only one returns True.
        """
        ...


class MemoryReplayStore(MemoryKeyStore):
    """Event ids in this process's memory, oldest evicted first once ``max_entries`` is
    reached (``evicted`` counts how often)."""

    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False if it is remembered (a replay)."""
        return self.claim(key, ttl)


class RedisReplayStore(RedisKeyStore):
    """Event ids in Redis, shared by every process that serves the endpoint. Redis errors
    propagate; the handler then accepts the event and logs the failure. ``from_url`` uses
    short timeouts: the store is asked inside the 4 s Customer.io waits for an answer."""

    default_prefix = "opencdp:webhooks:seen:"

    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds (``SET NX EX``, atomic across processes);
        False if it is remembered (a replay)."""
        return self.claim(key, ttl)
