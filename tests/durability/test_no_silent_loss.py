"""Regression proofs for "no silent loss": each reproduces a way data used to be lost and
asserts the exact counts on both platforms."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import tracemalloc
from typing import Any

import pytest

from opencdp.config import RateLimitConfig, RetryConfig
from opencdp.errors import QueueFullError, ValidationError
from opencdp.message import new_ulid, ulid_str
from support.stored import stored


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize("poison", ["caf\udce9", _nested(300), {1: "int key"}, 2**70,
                                    b"bytes", {1, 2}, object()],
                         ids=["surrogate", "deep", "int-key", "bigint", "bytes", "set", "object"])
def test_one_poison_value_costs_nothing_else(make_client: Any, sandbox: Any,
                                             poison: Any) -> None:
    client = make_client(batch_size=2000)
    for seq in range(500):
        client.track("u1", "Viewed", {"seq": seq})
    with pytest.raises(ValidationError) as info:
        client.track("u1", "Viewed", {"seq": "bad", "value": poison})
    assert info.value.field is not None and info.value.field.startswith("properties")
    for seq in range(500, 1000):
        client.track("u1", "Viewed", {"seq": seq})
    assert client.flush(30)
    for service in ("customerio", "opencdp"):
        assert sorted(stored(sandbox, service)) == list(range(1000)), service
    assert client.dead_letters() == []


def test_a_failed_call_can_be_retried_with_the_same_event_id(make_client: Any,
                                                             sandbox: Any) -> None:
    client = make_client(max_queue_size=5, queue_full="block", queue_full_timeout=0.05,
                         start_worker=False)
    for seq in range(5):
        client.track("u1", "Viewed", {"seq": seq})
    event_id = ulid_str(new_ulid())
    with pytest.raises(QueueFullError):
        client.track("u1", "Viewed", {"seq": 5}, event_id=event_id)
    client.engine.dispatcher.start()
    assert client.flush(20)
    assert client.track("u1", "Viewed", {"seq": 5}, event_id=event_id) == event_id
    assert client.flush(20)
    for service in ("customerio", "opencdp"):
        assert sorted(stored(sandbox, service)) == list(range(6)), service


def test_queue_full_means_queued_nowhere(make_client: Any, sandbox: Any) -> None:
    sandbox.set_faults({"customerio": {"down": True}})
    client = make_client(max_queue_size=20, queue_full="block", queue_full_timeout=0.01)
    accepted: list[int] = []
    for seq in range(300):
        try:
            client.track("u1", "Viewed", {"seq": seq})
            accepted.append(seq)
        except QueueFullError:
            pass
    assert len(accepted) < 300, "the queue never filled: the test proves nothing"
    client.flush(5)
    assert sorted(stored(sandbox, "opencdp")) == accepted
    sandbox.clear_faults()
    assert client.flush(30)
    assert sorted(stored(sandbox, "customerio")) == accepted


def test_the_queue_bound_bounds_memory(make_client: Any) -> None:
    client = make_client(max_queue_size=5000, start_worker=False)
    payload = "x" * 10_000
    tracemalloc.start()
    try:
        for seq in range(20_000):
            client.track("u1", "Viewed", {"seq": seq, "blob": payload})
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert client.health().destinations["opencdp"].pending == 5000
    assert current < 5000 * 10_000 * 1.6, f"{current / 1e6:.0f} MB held for 5,000 messages"


@pytest.mark.parametrize("options", [
    {"rate_limits": {"customerio": 10}},
    {"retry": {"max_attempts": 2, "base_delay": 0.01}},
    {"rate_limits": RateLimitConfig(customerio=1000), "retry": RetryConfig(max_attempts=3)},
])
def test_nested_options_as_dicts_cannot_stop_delivery(make_client: Any, sandbox: Any,
                                                      options: dict[str, Any]) -> None:
    sandbox.set_faults({"customerio": {"error_rate": 0.3, "statuses": [503], "seed": 3}})
    client = make_client(**options)
    for seq in range(20):
        client.track("u1", "Viewed", {"seq": seq})
    assert client.flush(30)
    assert client.stats().running
    assert sorted(stored(sandbox, "opencdp")) == list(range(20))
    delivered = stored(sandbox, "customerio")
    dead = {d.message.data["seq"] for d in client.dead_letters("customerio")}
    assert sorted(set(delivered) | dead) == list(range(20))


def test_the_atexit_drain_honours_shutdown_timeout(sandbox: Any, tmp_path: Any) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        from opencdp import Client
        from opencdp.testing import sandbox_options
        class S:
            opencdp_url = {sandbox.opencdp_url!r}
            track_url = {sandbox.track_url!r}
            app_url = {sandbox.app_url!r}
        options = sandbox_options(S(), register_atexit=True, shutdown_timeout=30.0)
        client = Client(**options)
        for seq in range(30):
            client.track("u1", "Viewed", {{"seq": seq}})
    """))
    sandbox.set_faults({"opencdp": {"latency_ms": 700}})
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started > 0.7
    assert "OCDP302" not in done.stderr
    for service in ("customerio", "opencdp"):
        assert sorted(stored(sandbox, service)) == list(range(30)), service
