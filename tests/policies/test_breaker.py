"""The circuit breaker, on an injected clock."""

from __future__ import annotations

from opencdp.config import BreakerConfig
from opencdp.policies.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_half_opens_and_closes() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        BreakerConfig(), clock, on_change=lambda a, b, _: changes.append((a, b))
    )
    for _ in range(4):
        breaker.record_failure("HTTP 503")
    assert breaker.state == "CLOSED"
    breaker.record_failure("HTTP 503")
    assert breaker.state == "OPEN"
    assert breaker.wait_time() == 30.0
    clock.now = 29.9
    assert breaker.state == "OPEN"
    clock.now = 30.0
    assert breaker.state == "HALF_OPEN"
    assert breaker.wait_time() == 0.0
    breaker.before_request()
    assert breaker.wait_time() > 0, "one probe at a time while half-open"
    for _ in range(3):
        breaker.record_success()
    assert breaker.state == "CLOSED"
    assert changes == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_failure_while_half_open_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=2, reset_timeout=5), clock)
    breaker.record_failure("x")
    breaker.record_failure("x")
    clock.now = 5
    assert breaker.state == "HALF_OPEN"
    breaker.record_failure("still down")
    assert breaker.state == "OPEN"
    assert breaker.last_failure_reason == "still down"


def test_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=3), Clock())
    for _ in range(10):
        breaker.record_failure("x")
        breaker.record_failure("x")
        breaker.record_success()
    assert breaker.state == "CLOSED"
