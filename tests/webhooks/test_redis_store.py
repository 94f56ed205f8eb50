"""The Redis replay store against a real redis-server, shared the way several processes share it."""

from __future__ import annotations

import importlib.util
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from opencdp.webhooks import RedisReplayStore, ReplayStore, WebhookHandler

from .support import KEY, payload, signed, wait_until

_HELPER = Path(__file__).resolve().parents[1] / "redis_server.py"


def _helper() -> Any:
    module = sys.modules.get("opencdp_tests_redis_server")
    if module is None:
        spec = importlib.util.spec_from_file_location("opencdp_tests_redis_server", _HELPER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    helper = _helper()
    try:
        server = helper.running_redis()
        url = server.__enter__()
    except helper.RedisUnavailable as exc:
        if helper.in_ci():
            pytest.fail(f"CI=true but no redis-server could be had: {exc}")
        pytest.skip(f"Redis tests need a redis-server: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def prefix() -> str:
    return f"t{secrets.token_hex(6)}:"


@pytest.mark.redis
def test_two_processes_share_what_they_have_seen(redis_url: str, prefix: str) -> None:
    first = RedisReplayStore.from_url(redis_url, prefix=prefix)
    second = RedisReplayStore(redis.Redis.from_url(redis_url), prefix=prefix)
    assert isinstance(first, ReplayStore)
    assert first.add("ev-1", 60)
    assert not second.add("ev-1", 60)
    assert second.add("ev-2", 60)
    assert not first.add("ev-2", 60)
    ttl = redis.Redis.from_url(redis_url).pttl(f"{prefix}ev-1")
    assert 0 < ttl <= 60_000


@pytest.mark.redis
def test_ids_are_forgotten_after_their_ttl(redis_url: str, prefix: str) -> None:
    store = RedisReplayStore.from_url(redis_url, prefix=prefix)
    assert store.add("short", 0.05)
    assert not store.add("short", 0.05)
    started = time.monotonic()
    wait_until(lambda: store.add("short", 60), timeout=5)
    assert time.monotonic() - started < 5


@pytest.mark.redis
def test_handlers_behind_one_redis_refuse_each_others_replays(redis_url: str, prefix: str) -> None:
    one = WebhookHandler(KEY, replay_store=RedisReplayStore.from_url(redis_url, prefix=prefix))
    two = WebhookHandler(KEY, replay_store=RedisReplayStore.from_url(redis_url, prefix=prefix))
    body = payload()
    assert one.receive(signed(body), body).payload["status"] == "accepted"
    assert two.receive(signed(body), body).payload["status"] == "duplicate"


def test_unreachable_redis_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    """With Redis down the event is accepted (and logged) rather than stalling Customer.io."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = RedisReplayStore.from_url(f"redis://127.0.0.1:{port}/0")
    handler = WebhookHandler(KEY, replay_store=store)
    body = payload()
    assert handler.receive(signed(body), body).payload["status"] == "accepted"
    assert "replay store failed" in caplog.text
    assert "prefix='opencdp:webhooks:seen:'" in repr(store)
