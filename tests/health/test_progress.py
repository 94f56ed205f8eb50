"""Health measures progress, and time steps do not move the engine.

A destination is healthy when it makes progress: refused credentials are ``failing`` at once
(counted in messages, not requests); a lane whose turns keep failing, or whose oldest message
ages while nothing is delivered, is ``stalled``, whatever the cause; ``/health`` answers 503
for both. Clock steps are tried with an injected clock instead of the machine's.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from opencdp import Client, CustomerIO, clock
from opencdp.clock import ManualClock, SteadyClock
from opencdp.health import STALL_AFTER, render
from support.stored import stored
from support.waiting import wait_for

from .support import client_options


def test_refused_credentials_are_failing_after_one_batch(sandbox: Any) -> None:
    """An App key used as the Track key, 20 calls: one refused batch makes Customer.io
    failing (not "ok" because fewer than five requests were answered)."""
    client = Client(**client_options(
        sandbox, register_atexit=False,
        customer_io=CustomerIO("sandbox-site", "sandbox-app-key", track_url=sandbox.track_url,
                               app_url=sandbox.app_url)))
    try:
        for seq in range(20):
            client.track("u1", "viewed", {"seq": seq})
        assert client.flush(10)
        health = client.health()
        cio = health.destinations["customerio"]
        assert cio.requests == 1 and cio.failed == 20
        assert cio.state == "failing"
        assert health.destinations["opencdp"].state == "ok"
        assert render(health)[0] == 503
        assert "sandbox-app-key" not in str(health.to_dict())
    finally:
        client.close(1)


def test_no_progress_while_messages_age_is_stalled(sandbox: Any) -> None:
    manual = ManualClock()
    sandbox.set_faults({"customerio": {"error_rate": 1.0, "statuses": [503]}})
    with clock.use(manual):
        client = Client(**client_options(sandbox, register_atexit=False))
        try:
            for seq in range(5):
                client.track("u1", "viewed", {"seq": seq})
            assert wait_for(lambda: client.stats().lanes["customerio"].counters.retried >= 5)
            assert client.health().destinations["customerio"].stalled is None
            manual.advance(STALL_AFTER + 1)
            cio = client.health().destinations["customerio"]
            assert cio.state == "stalled"
            assert cio.stalled is not None and "nothing delivered" in cio.stalled
            assert "503" in cio.stalled
            assert render(client.health(), "customerio")[0] == 503
            sandbox.clear_faults()
            assert client.flush(15)
            assert client.health().destinations["customerio"].state == "ok"
        finally:
            client.close(1)
    assert sorted(stored(sandbox, "customerio")) == list(range(5))


@pytest.mark.redis
def test_a_lane_that_cannot_read_its_queue_is_stalled_within_seconds(
        sandbox: Any, redis_url: str, tmp_path: Path) -> None:
    helper = sys.modules["opencdp_tests_redis_server"]
    server = helper.RestartableRedis().start()
    client = Client(**client_options(sandbox, register_atexit=False, queue=server.url,
                                     spill_path=str(tmp_path / "spill.db")))
    try:
        client.track("u1", "viewed", {"seq": 0})
        assert client.flush(10)
        server.stop()
        for seq in range(1, 11):
            client.track("u1", "viewed", {"seq": seq})  # spilled: durable, never raised
        started = time.monotonic()
        assert wait_for(lambda: all(d.state == "stalled"
                                 for d in client.health().destinations.values()), 10)
        assert time.monotonic() - started < 10
        reason = client.health().destinations["opencdp"].stalled or ""
        assert "queue" in reason
        server.start()
        assert client.flush(30)
        assert wait_for(lambda: client.health().status == "ok", 10)
    finally:
        client.close(2)
        server.close()
    for service in ("opencdp", "customerio"):
        assert sorted(stored(sandbox, service)) == list(range(11)), service


# --- clock steps ------------------------------------------------------------------------------

def test_the_steady_clock_absorbs_steps(caplog: Any) -> None:
    manual = ManualClock()
    steady = SteadyClock(manual)
    before = steady.time()
    with caplog.at_level(logging.WARNING, logger="opencdp"):
        manual.step(-3600)
        back = steady.time()
        manual.step(3600 + 25 * 3600)
        forward = steady.time()
        steady.time()
    assert 0 <= back - before < 1 and 0 <= forward - back < 1
    steps = [r for r in caplog.records if "OCDP340" in r.getMessage()]
    assert len(steps) == 2  # once per step, not once per reading
    manual.step(-25 * 3600)  # the wall clock comes back: followed again
    assert abs(steady.time() - manual.time()) < 1


@pytest.mark.parametrize("queue", ["memory", "sqlite"])
def test_a_clock_stepped_back_an_hour_holds_nothing(sandbox: Any, tmp_path: Path,
                                                    queue: str) -> None:
    manual = ManualClock()
    url = "memory" if queue == "memory" else f"sqlite:///{tmp_path / 'q.db'}"
    sandbox.set_faults({"customerio": {"down": True}})
    with clock.use(SteadyClock(manual)):
        client = Client(**client_options(sandbox, register_atexit=False, queue=url,
                                         spill_path=str(tmp_path / "s.db")))
        try:
            for seq in range(20):
                client.track("u1", "viewed", {"seq": seq})
            assert wait_for(lambda: client.stats().lanes["customerio"].counters.retried >= 1)
            manual.step(-3600)
            ages = [client.health().destinations["customerio"].oldest_pending_age]
            sandbox.clear_faults()
            assert client.flush(15)
            ages.append(client.health().destinations["customerio"].oldest_pending_age)
            assert all(age is None or age >= 0 for age in ages)
        finally:
            client.close(2)
    assert sorted(stored(sandbox, "customerio")) == list(range(20))


def test_a_day_forward_expires_no_budget(sandbox: Any) -> None:
    manual = ManualClock()
    sandbox.set_faults({"customerio": {"error_rate": 1.0, "statuses": [503]}})
    with clock.use(SteadyClock(manual)):
        client = Client(**client_options(sandbox, register_atexit=False))
        try:
            for seq in range(20):
                client.track("u1", "viewed", {"seq": seq})
            assert wait_for(lambda: client.stats().lanes["customerio"].counters.retried >= 20)
            manual.step(25 * 3600)
            time.sleep(1.5)
            manual.step(-25 * 3600)
            sandbox.clear_faults()
            assert client.flush(15)
            assert client.dead_letters() == []
        finally:
            client.close(2)
    assert sorted(stored(sandbox, "customerio")) == list(range(20))


def test_retries_stored_under_a_clock_an_hour_ahead_are_due_now(sandbox: Any,
                                                                tmp_path: Path) -> None:
    """A process whose clock was an hour ahead leaves retries in a SQLite queue; the next
    process, on the right time, delivers them at once (the stored time is bounded)."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    sandbox.set_faults({"customerio": {"down": True}})
    with clock.use(ManualClock(time.time() + 3600)):
        first = Client(**client_options(sandbox, register_atexit=False, queue=url,
                                        spill_path=str(tmp_path / "s.db")))
        for seq in range(10):
            first.track("u1", "viewed", {"seq": seq})
        assert wait_for(lambda: first.stats().lanes["customerio"].counters.retried >= 10)
        first.close(0.5)
    sandbox.clear_faults()
    second = Client(**client_options(sandbox, register_atexit=False, queue=url,
                                     spill_path=str(tmp_path / "s.db")))
    try:
        started = time.monotonic()
        assert second.flush(15)
        assert time.monotonic() - started < 15
    finally:
        second.close(2)
    assert sorted(stored(sandbox, "customerio")) == list(range(10))
