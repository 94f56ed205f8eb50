"""The chaos proof at CI size: faults on both platforms and a Customer.io outage mid-run."""

from __future__ import annotations

import pytest
from bench.chaos import run_chaos


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_event_stored_exactly_once_through_chaos() -> None:
    report = run_chaos(events=2000, seconds=8, outage=3, drain_timeout=180)
    assert report.raised == 0, "the host code never sees an exception"
    assert report.drained
    assert report.poison_injected == 4
    assert report.poison_refused_at_call == 2, "unencodable values are refused at the call"
    assert report.poison_isolated == 2, "Customer.io-only limits cost only that copy"
    for name, dest in report.destinations.items():
        assert dest.lost == 0, name
        assert dest.stored_twice == 0, name
        assert dest.dead_lettered == 0, name
        assert dest.retried > 0, f"{name}: the faults were exercised"
