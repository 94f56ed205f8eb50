"""The planner with plain data and an injected clock and random source."""

from __future__ import annotations

from opencdp.config import RetryConfig
from opencdp.destinations.base import Failure, Response, Retry
from opencdp.message import Message
from opencdp.outbox.base import Leased
from opencdp.policies.plan import PAUSE_AFTER_429S, plan_retry, signal

CONFIG = RetryConfig(base_delay=1.0, max_delay=60.0, max_attempts=3, max_age=3600.0)
NOW = 1_000_000.0


def _item(attempt: int = 0, entered: float = NOW - 10, ulid_ms: int = 0) -> Leased:
    message = Message((ulid_ms << 80) | 1, "track", "u1", "Viewed", None, None, 1)
    return Leased(message, attempt, None, entered)


def test_signal_tells_the_breaker_what_an_exchange_means() -> None:
    assert signal(Response(200, b"", {})).failure is False
    assert signal(Response(429, b"", {})).throttled and not signal(Response(429, b"", {})).failure
    assert signal(Response(503, b"", {})).failure
    assert signal(Response(408, b"", {})).failure
    refused = signal(Response(401, b"", {}))
    assert refused.failure and refused.refused
    assert signal(Response(422, b"", {})).failure is False
    assert signal(Failure("ConnectError", "connect")).failure


def test_a_failure_spends_one_attempt_and_backs_off_with_jitter() -> None:
    plan = plan_retry(Retry([_item(0)], "HTTP 503", 503), NOW, CONFIG, rand=lambda: 0.5)
    (again,) = plan.again
    assert again.attempt == 1
    assert again.not_before == NOW + 1.0  # 0.5 * min(60, 1 * 2**1)
    assert not plan.expired and plan.pause is None


def test_retry_after_is_a_floor() -> None:
    plan = plan_retry(Retry([_item(0)], "HTTP 503", 503, after=30.0), NOW, CONFIG,
                      rand=lambda: 0.0)
    assert plan.again[0].not_before == NOW + 30.0


def test_the_budget_ends_at_max_attempts() -> None:
    plan = plan_retry(Retry([_item(2), _item(0)], "HTTP 500", 500), NOW, CONFIG)
    assert [i.attempt for i in plan.expired] == [2]
    assert [r.attempt for r in plan.again] == [1]


def test_age_counts_from_entering_the_outbox_not_from_the_event_time() -> None:
    year_old_event = _item(0, entered=NOW - 5, ulid_ms=int((NOW - 365 * 86400) * 1000))
    assert plan_retry(Retry([year_old_event], "HTTP 500", 500), NOW, CONFIG).again
    stale = _item(0, entered=NOW - 3601)
    assert plan_retry(Retry([stale], "HTTP 500", 500), NOW, CONFIG).expired == [stale]


def test_a_429_never_spends_the_budget_and_pauses_only_when_clustered() -> None:
    last_try = _item(2, entered=NOW - 7200)
    sporadic = plan_retry(Retry([last_try], "HTTP 429", 429, after=2.0), NOW, CONFIG,
                          recent_429s=1)
    assert sporadic.again[0].attempt == 2 and not sporadic.expired
    assert sporadic.pause is None
    clustered = plan_retry(Retry([_item()], "HTTP 429", 429, after=2.0), NOW, CONFIG,
                           recent_429s=PAUSE_AFTER_429S)
    assert clustered.pause == 2.0


def test_a_failed_probe_keeps_the_attempt_count() -> None:
    plan = plan_retry(Retry([_item(1)], "HTTP 503", 503), NOW, CONFIG, probing=True)
    assert plan.again[0].attempt == 1
