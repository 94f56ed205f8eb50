"""The one TTL key store, in memory and in a real Redis: claim, expire, release, share."""

from __future__ import annotations

import secrets

import pytest
import redis

from opencdp.errors import ConfigurationError, ValidationError
from opencdp.policies.idempotency import SharedIdempotencyGuard
from opencdp.policies.keystore import KeyStore, MemoryKeyStore, RedisKeyStore
from opencdp.webhooks import MemoryReplayStore, RedisReplayStore
from support.waiting import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_memory_claim_expire_release() -> None:
    clock = Clock()
    store = MemoryKeyStore(clock=clock)
    assert isinstance(store, KeyStore)
    assert store.claim("a", 10)
    assert not store.claim("a", 10)
    store.release("a")
    assert store.claim("a", 10)
    clock.now = 9.99
    assert not store.claim("a", 10)
    clock.now = 10.0
    assert store.claim("a", 10)
    assert len(store) == 1


@pytest.mark.parametrize("ttl", [0, -5, "10", None, True])
def test_bad_ttls_are_named(ttl: object) -> None:
    with pytest.raises(ConfigurationError, match="ttl must be a positive number"):
        MemoryKeyStore().claim("a", ttl)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ttl must be a positive number"):
        RedisKeyStore(object()).claim("a", ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -1, 1.5, "10", True])
def test_bad_sizes_are_named(size: object) -> None:
    with pytest.raises(ConfigurationError, match="max_entries"):
        MemoryKeyStore(size)  # type: ignore[arg-type]


def test_webhook_stores_are_the_key_store() -> None:
    assert issubclass(MemoryReplayStore, MemoryKeyStore)
    assert issubclass(RedisReplayStore, RedisKeyStore)
    store = MemoryReplayStore()
    assert store.add("ev", 5) and not store.claim("ev", 5)


@pytest.mark.redis
def test_redis_claim_release_claim_and_expiry(redis_url: str) -> None:
    prefix = f"t{secrets.token_hex(6)}:"
    store = RedisKeyStore.from_url(redis_url, prefix=prefix)
    other = RedisKeyStore(redis.Redis.from_url(redis_url), prefix=prefix)
    assert isinstance(store, KeyStore)
    assert store.claim("k", 60)
    assert not other.claim("k", 60)
    other.release("k")
    assert store.claim("k", 60)
    assert store.claim("short", 0.05)
    assert wait_for(lambda: store.claim("short", 60), 5), "the key outlived its TTL"
    assert repr(store) == f"RedisKeyStore(prefix={prefix!r})"


def test_redis_store_keeps_the_password_out_of_its_repr() -> None:
    store = RedisKeyStore.from_url("redis://:s3cret-pass@127.0.0.1:1/0")
    assert "s3cret" not in repr(store)
    replay = RedisReplayStore.from_url("redis://:s3cret-pass@127.0.0.1:1/0")
    assert isinstance(replay, RedisReplayStore)
    assert replay.prefix == "opencdp:webhooks:seen:"


@pytest.mark.parametrize("key", ["", None, 42, b"bytes"])
def test_bad_keys_are_named(key: object) -> None:
    with pytest.raises(ValidationError, match="non-empty string"):
        MemoryKeyStore().claim(key, 5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="non-empty string"):
        RedisKeyStore(object()).claim(key, 5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="non-empty string"):
        SharedIdempotencyGuard(object(), "p:").claim(key)  # type: ignore[arg-type]
