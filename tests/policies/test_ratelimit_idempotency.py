"""Token bucket and idempotency guard, on injected clocks."""

from __future__ import annotations

import secrets
import threading

import pytest
import redis

from opencdp.errors import ConfigurationError
from opencdp.policies import idempotency
from opencdp.policies.idempotency import IdempotencyGuard, SharedIdempotencyGuard
from opencdp.policies.ratelimit import TokenBucket
from support.servers import refused_port


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_rate_per_second() -> None:
    clock = Clock()
    bucket = TokenBucket(100, clock=clock)
    granted = sum(1 for _ in range(150) if bucket.take() == 0.0)
    assert granted == 100
    assert bucket.take() > 0
    clock.now = 0.5
    granted = sum(1 for _ in range(100) if bucket.take() == 0.0)
    assert granted == 50


def test_bucket_pause_for_retry_after() -> None:
    clock = Clock()
    bucket = TokenBucket(None, clock=clock)
    assert bucket.take() == 0.0
    bucket.pause(2.0)
    assert bucket.take() == 2.0
    clock.now = 2.0
    assert bucket.take() == 0.0


def test_idempotency_guard_window_and_bound() -> None:
    clock = Clock()
    guard = IdempotencyGuard(ttl=300, max_entries=3, clock=clock)
    assert guard.claim("a")
    assert not guard.claim("a")
    clock.now = 301
    assert guard.claim("a")
    for key in "bcd":
        assert guard.claim(key)
    assert guard.claim("a"), "evicted by the bound"
    assert guard.suppressed == 1


def test_a_released_claim_is_accepted_again() -> None:
    """A failed write releases its key: the caller's retry of the same event id gets in."""
    guard = IdempotencyGuard(ttl=300)
    assert guard.claim("01HZX")
    guard.release("01HZX")
    assert guard.claim("01HZX"), "the retry after a failed write was refused"
    assert not guard.claim("01HZX")
    assert guard.suppressed == 1
    guard.release("never-claimed")  # harmless


def test_identity_only_no_content_hashing() -> None:
    assert not hasattr(idempotency, "content_key")


def test_concurrent_claims_admit_exactly_one() -> None:
    guard = IdempotencyGuard(ttl=60)
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait(timeout=5)
        outcome = guard.claim("same")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(results) == [False] * 7 + [True]
    assert guard.suppressed == 7


@pytest.mark.parametrize("ttl", [0, -1, "300", True, float("nan")])
def test_bad_ttl_is_refused(ttl: object) -> None:
    with pytest.raises(ConfigurationError, match="ttl"):
        IdempotencyGuard(ttl=ttl)  # type: ignore[arg-type]


@pytest.mark.redis
def test_shared_guard_claim_release_claim_across_processes(redis_url: str) -> None:
    prefix = f"t{secrets.token_hex(6)}:idem:"
    one = SharedIdempotencyGuard(redis.Redis.from_url(redis_url), prefix, ttl=60)
    two = SharedIdempotencyGuard(redis.Redis.from_url(redis_url), prefix, ttl=60)
    assert one.claim("ev-1")
    assert not two.claim("ev-1"), "the other worker must see the claim"
    pttl = redis.Redis.from_url(redis_url).pttl(f"{prefix}ev-1")
    assert 0 < pttl <= 60_000
    one.release("ev-1")
    assert redis.Redis.from_url(redis_url).exists(f"{prefix}ev-1") == 0
    assert two.claim("ev-1"), "a released key must be claimable again"
    assert not one.claim("ev-1")
    assert (one.suppressed, two.suppressed, one.fallbacks, two.fallbacks) == (1, 1, 0, 0)


def test_shared_guard_falls_back_to_memory_when_redis_is_down() -> None:
    port = refused_port()
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2,
                         socket_timeout=0.2, password="hunter2-secret")
    guard = SharedIdempotencyGuard(client, "opencdp:idem:", ttl=60)
    assert guard.claim("k")
    assert not guard.claim("k")
    guard.release("k")
    assert guard.claim("k")
    assert guard.fallbacks == 4 and guard.suppressed == 1
    assert "hunter2" not in repr(guard)
