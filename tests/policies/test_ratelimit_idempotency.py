"""Token bucket and idempotency guard, on injected clocks."""

from __future__ import annotations

from opencdp.policies.idempotency import IdempotencyGuard, content_key
from opencdp.policies.ratelimit import TokenBucket


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
    assert guard.first("a")
    assert not guard.first("a")
    clock.now = 301
    assert guard.first("a")
    for key in "bcd":
        assert guard.first(key)
    assert guard.first("a"), "evicted by the bound"
    assert guard.suppressed == 1


def test_content_key_ignores_key_order() -> None:
    assert content_key("identify", "1", None, {"a": 1, "b": 2}) == content_key(
        "identify", "1", None, {"b": 2, "a": 1}
    )
    assert content_key("identify", "1", None, {"a": 1}) != content_key(
        "identify", "2", None, {"a": 1}
    )
