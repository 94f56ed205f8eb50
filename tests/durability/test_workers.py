"""A pool of `opencdp worker` processes on a Redis outbox; one is SIGKILLed mid-stream."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from opencdp import Client, CustomerIO
from opencdp.clock import ManualClock, use
from opencdp.policies.ratelimit import SharedTokenBucket
from support.waiting import wait_for

pytestmark = pytest.mark.redis


def stored(sandbox: Any, service: str) -> Counter[int]:
    seen: Counter[int] = Counter()
    for person in sandbox.people(service):
        for event in person.get("events", []):
            seen[event["data"]["seq"]] += 1
    return seen


def start_worker(queue: str, sandbox: Any) -> subprocess.Popen[str]:
    env = dict(os.environ, CDP_API_KEY="cdp-test-key", CUSTOMERIO_SITE_ID="sandbox-site",
               CUSTOMERIO_TRACK_API_KEY="sandbox-track-key")
    proc = subprocess.Popen(
        [sys.executable, "-m", "opencdp", "worker", "--queue", queue, "--cdp-endpoint",
         sandbox.opencdp_url, "--track-url", sandbox.track_url, "--app-url", sandbox.app_url,
         "--timeout", "1"],
        env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["worker"] == "started"
    return proc


@pytest.mark.timeout(180)
def test_killed_worker_loses_nothing_and_duplicates_nothing(sandbox: Any,
                                                            redis_url: str) -> None:
    queue = f"{redis_url.rstrip('/')}?prefix=w{secrets.token_hex(4)}"
    count = 3000
    app = Client(cdp_api_key="cdp-test-key", cdp_endpoint=sandbox.opencdp_url,
                 cdp_fallback_endpoints=[], send_to_customer_io=True,
                 customer_io=CustomerIO("sandbox-site", "sandbox-track-key",
                                        track_url=sandbox.track_url, app_url=sandbox.app_url),
                 queue=queue, start_worker=False, register_atexit=False)
    for seq in range(count):
        app.track(f"user_{seq % 40}", "pooled_event", {"seq": seq})
    first, second = start_worker(queue, sandbox), start_worker(queue, sandbox)
    try:
        assert wait_for(lambda: sandbox.stats()["opencdp"]["events"] >= 300, 60), \
            "the workers did not start delivering"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        if first.stdout is not None:
            first.stdout.close()
        assert wait_for(lambda: len(stored(sandbox, "opencdp")) >= count
                        and len(stored(sandbox, "customerio")) >= count, 120), \
            "the surviving worker did not finish"
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=30)
        if first.poll() is None:
            first.kill()
            first.wait(10)
        if first.stdout is not None and not first.stdout.closed:
            first.stdout.close()
    assert second.returncode == 0
    assert json.loads(out.strip().splitlines()[-1]) == {"worker": "stopped", "drained": True}
    assert all(n == 1 for n in stored(sandbox, "customerio").values())
    twice = sum(n - 1 for n in stored(sandbox, "opencdp").values() if n > 1)
    assert twice == sandbox.stats()["opencdp"]["duplicates"], "each resend is flagged by its key"
    app.close(timeout=1)


def test_processes_share_one_rate_budget(redis_url: str) -> None:
    """Three buckets on one key grant one budget between them, counted on a clock that
    moves only when the test moves it (a loaded machine cannot stretch the second)."""
    import redis

    key = f"test:rate:{secrets.token_hex(4)}"
    with use(ManualClock(start=1_000_000.0, frozen=True)) as manual:
        buckets = [SharedTokenBucket(redis.Redis.from_url(redis_url), key, rate=20)
                   for _ in range(3)]

        def granted() -> int:
            return sum(bucket.take() == 0.0 for _ in range(30) for bucket in buckets)

        assert granted() == 20, "the burst of one budget of 20/s, for all three together"
        manual.advance(1.0 + 1 / 64)  # a second and a little: 20 tokens, capped at 20
        assert granted() == 20
    assert all(b.fallbacks == 0 for b in buckets)
