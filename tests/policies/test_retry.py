"""Backoff, Retry-After and the retry budget."""

from __future__ import annotations

import email.utils

import pytest

from opencdp.config import RetryConfig
from opencdp.policies.retry import (
    backoff,
    classify_status,
    exhausted,
    parse_retry_after,
    retry_at,
)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, "ok"), (204, "ok"), (301, "dead"), (400, "dead"), (401, "dead"), (404, "dead"),
     (408, "retry"), (429, "retry"), (500, "retry"), (503, "retry"), (521, "retry")],
)
def test_classify_status(status: int, verdict: str) -> None:
    assert classify_status(status) == verdict


def test_backoff_is_full_jitter_under_a_cap() -> None:
    config = RetryConfig(base_delay=1.0, max_delay=10.0)
    assert backoff(1, config, rand=lambda: 1.0) == 2.0
    assert backoff(3, config, rand=lambda: 0.5) == 4.0
    assert backoff(50, config, rand=lambda: 1.0) == 10.0
    assert backoff(4, config, rand=lambda: 0.0) == 0.0


def test_retry_after_wins_over_a_shorter_backoff() -> None:
    config = RetryConfig(base_delay=0.1, max_delay=1.0)
    assert retry_at(1, 100.0, config, retry_after=7.0, rand=lambda: 1.0) == 107.0
    assert retry_at(1, 100.0, config, retry_after=None, rand=lambda: 1.0) == pytest.approx(100.2)


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("3", 0.0) == 3.0
    assert parse_retry_after(None, 0.0) is None
    assert parse_retry_after("soon", 0.0) is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30, abs=1)
    assert parse_retry_after("-5", now) == 0.0


def test_budget_by_attempts_and_age() -> None:
    config = RetryConfig(max_attempts=3, max_age=60)
    assert not exhausted(2, created=100.0, now=110.0, config=config)
    assert exhausted(3, created=100.0, now=110.0, config=config)
    assert exhausted(1, created=100.0, now=161.0, config=config)
