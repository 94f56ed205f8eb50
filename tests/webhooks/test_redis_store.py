"""The Redis replay store against a real redis-server, shared the way several processes share it."""

from __future__ import annotations

import json
import secrets
import time

import pytest
import redis

from opencdp.webhooks import RedisReplayStore, ReplayStore, WebhookHandler
from support.servers import refused_port, wait_until

from .support import KEY, payload, signed


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
    port = refused_port()
    store = RedisReplayStore.from_url(f"redis://127.0.0.1:{port}/0")
    handler = WebhookHandler(KEY, replay_store=store)
    body = payload()
    assert handler.receive(signed(body), body).payload["status"] == "accepted"
    assert "replay store failed" in caplog.text
    assert "prefix='opencdp:webhooks:seen:'" in repr(store)


@pytest.mark.redis
def test_the_replay_store_is_the_shared_key_store(redis_url: str, prefix: str) -> None:
    """Releasing an id lets the event in again: the webhook store is the one TTL key store."""
    store = RedisReplayStore.from_url(redis_url, prefix=prefix)
    handler = WebhookHandler(KEY, replay_store=store)
    body = payload()
    assert handler.receive(signed(body), body).payload["status"] == "accepted"
    assert handler.receive(signed(body), body).payload["status"] == "duplicate"
    event_id = json.loads(body)["event_id"]
    store.release(event_id)
    assert handler.receive(signed(body), body).payload["status"] == "accepted"
