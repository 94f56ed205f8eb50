"""The Redis outbox, and what shares its connection (the idempotency guard, the shared rate
bucket), when Redis refuses writes (a user without write rights, a read-only replica, the
memory limit with ``noeviction``) and when it stalls (``CLIENT PAUSE``). Each test that
changes a server starts one of its own, so the session's shared server is never disturbed."""

from __future__ import annotations

import importlib.util
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from opencdp import Client
from opencdp import clock as clocks
from opencdp.errors import ConfigurationError, OutboxError
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid, ulid_str
from opencdp.outbox.base import MAX_AHEAD, RetryItem
from opencdp.outbox.redis import RedisOutbox
from opencdp.policies.idempotency import SharedIdempotencyGuard
from opencdp.policies.ratelimit import SharedTokenBucket
from support.stored import stored

pytestmark = pytest.mark.redis

BOTH = OPENCDP | CUSTOMERIO
PASSWORD = "pw-" + secrets.token_hex(8)


def _helper() -> Any:
    module = sys.modules.get("opencdp_tests_redis_server")
    if module is None:
        path = Path(__file__).resolve().parents[1] / "redis_server.py"
        spec = importlib.util.spec_from_file_location("opencdp_tests_redis_server", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def server() -> Iterator[Any]:
    """A redis-server of this test's own."""
    helper = _helper()
    try:
        own = helper.RestartableRedis().start()
    except helper.RedisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield own
    finally:
        own.close()


def admin(server: Any) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)


def msg(n: int, destinations: int = BOTH) -> Message:
    return Message(new_ulid(), "track", f"user-{n}", "Edge", {"seq": n}, None, destinations)


def user_url(server: Any, user: str) -> str:
    return f"redis://{user}:{PASSWORD}@127.0.0.1:{server.port}/0"


def add_user(server: Any, user: str, *rules: str) -> None:
    admin(server).execute_command("ACL", "SETUSER", user, "reset", "on", f">{PASSWORD}", *rules)


@pytest.fixture
def paused(server: Any) -> Iterator[Any]:
    """``pause(seconds, mode)`` pauses the server's clients; unpaused at the end whatever
    happened."""
    control = admin(server)

    def pause(seconds: float, mode: str = "ALL") -> None:
        control.execute_command("CLIENT", "PAUSE", int(seconds * 1000), mode)

    try:
        yield pause
    finally:
        control.execute_command("CLIENT", "UNPAUSE")


@pytest.fixture
def full(server: Any) -> Iterator[Any]:
    """``fill()`` puts the server at its memory limit (``noeviction``), ``free()`` lifts it;
    lifted at the end whatever happened."""
    control = admin(server)

    def fill() -> None:
        control.config_set("maxmemory-policy", "noeviction")
        control.config_set("maxmemory", int(control.info("memory")["used_memory"]) - 1024)

    def free() -> None:
        control.config_set("maxmemory", 0)

    class Full:
        pass

    handle = Full()
    handle.fill = fill  # type: ignore[attr-defined]
    handle.free = free  # type: ignore[attr-defined]
    try:
        yield handle
    finally:
        free()


# -- 2. a server that would take no writes from this user is refused at construction --------


def test_a_user_without_xadd_is_refused_at_construction_by_name(server: Any) -> None:
    add_user(server, "no-xadd", "~*", "+@all", "-xadd")
    with pytest.raises(ConfigurationError) as caught:
        RedisOutbox(user_url(server, "no-xadd"), prefix="t" + secrets.token_hex(4))
    text = str(caught.value)
    assert "'no-xadd' may not run xadd," in text and "NOPERM" in text
    assert "ACL SETUSER no-xadd +xadd" in text
    assert PASSWORD not in text


def test_a_read_only_user_is_told_every_command_it_lacks(server: Any) -> None:
    add_user(server, "reader", "~*", "+@read")
    with pytest.raises(ConfigurationError) as caught:
        RedisOutbox(user_url(server, "reader"), prefix="t" + secrets.token_hex(4))
    text = str(caught.value)
    for command in ("xgroup|create", "xadd", "xreadgroup", "xack", "zadd", "hincrby", "evalsha",
                    "script|load", "set", "del"):
        assert f"{command}," in text or f"{command} " in text, command
    assert "xrange" not in text.replace("xrevrange", ""), "what it may run is not listed"
    assert PASSWORD not in text


def test_a_user_confined_to_other_keys_is_told_about_the_keys(server: Any) -> None:
    prefix = "t" + secrets.token_hex(4)
    add_user(server, "elsewhere", "~other:*", "+@all")
    with pytest.raises(ConfigurationError) as caught:
        RedisOutbox(user_url(server, "elsewhere"), prefix=prefix)
    assert f"on the keys {{{prefix}}}:*" in str(caught.value)


def test_the_client_refuses_the_queue_url_without_showing_the_password(
    server: Any, sandbox: Any, tmp_path: Path
) -> None:
    from health.support import client_options

    add_user(server, "no-write", "~*", "+@all", "-@write")
    with pytest.raises(ConfigurationError) as caught:
        Client(**client_options(sandbox, queue=user_url(server, "no-write"),
                                spill_path=str(tmp_path / "spill.db")))
    text = str(caught.value)
    assert "'no-write' may not run" in text and "xadd" in text
    assert PASSWORD not in text and "***" in text
    assert not (tmp_path / "spill.db").exists()


def test_a_read_only_replica_is_refused_at_construction(server: Any) -> None:
    helper = _helper()
    replica = helper.RestartableRedis().start()
    try:
        admin(replica).execute_command("REPLICAOF", "127.0.0.1", str(server.port))
        with pytest.raises(ConfigurationError, match="read-only replica.*point the queue at the "
                                                     "primary"):
            RedisOutbox(replica.url, prefix="t" + secrets.token_hex(4))
    finally:
        replica.close()


def test_a_user_with_exactly_the_named_rights_runs_the_whole_cycle(server: Any) -> None:
    """The probe names every command the queue and its shared state run: a user granted only
    those (learnt from the refusal itself) puts, leases, retries, dead-letters, acks, reads
    stats, claims event ids and takes rate tokens without a single refusal."""
    prefix = "t" + secrets.token_hex(4)
    add_user(server, "minimal", f"~{{{prefix}}}:*", "-@all")
    with pytest.raises(ConfigurationError) as caught:
        RedisOutbox(user_url(server, "minimal"), prefix=prefix)
    grant = str(caught.value).split("ACL SETUSER minimal ")[1].split(")")[0].split()
    add_user(server, "minimal", f"~{{{prefix}}}:*", "-@all", *grant)
    box = RedisOutbox(user_url(server, "minimal"), prefix=prefix)
    try:
        first, second, third = msg(1), msg(2), msg(3)
        box.put_many([first])
        box.put(second)
        box.put_unless_stored(third, time.time())
        now = time.time()
        leased = box.lease("customerio", 10, now, 30.0)
        assert sorted(x.message.id for x in leased) == sorted(m.id for m in (first, second, third))
        box.retry("customerio", [RetryItem(first.id, now - 1, "503")])
        box.dead("customerio", [_dead(second.id)], now)
        box.ack("customerio", [third.id])
        again = box.lease("customerio", 10, time.time(), 30.0)
        assert [x.message.id for x in again] == [first.id] and again[0].attempt == 1
        box.ack("customerio", [first.id])
        assert box.next_due("customerio", time.time()) is None
        assert box.replay("customerio") == 1
        assert box.purge("customerio") == 0
        stats = box.stats(time.time())
        assert (stats["customerio"].pending, stats["customerio"].delivered) == (1, 2)
        assert box.trim() >= 0
        box.maintain(time.time())
        shared, key_prefix = box.shared_state()  # type: ignore[misc]
        guard = SharedIdempotencyGuard(shared, f"{key_prefix}idem:", ttl=60)
        assert guard.claim("ev") and not guard.claim("ev")
        guard.release("ev")
        bucket = SharedTokenBucket(shared, f"{key_prefix}rate:customerio", rate=10)
        assert bucket.take() == 0.0
        bucket.pause(0.01)
        assert (guard.fallbacks, bucket.fallbacks) == (0, 0)
    finally:
        box.close()


def _dead(message_id: int) -> Any:
    from opencdp.outbox.base import DeadItem

    return DeadItem(message_id, "400 refused", 400)


# -- 1. at the memory limit: hand out what is held, raise the refusal, lose nothing --------


def test_at_the_memory_limit_a_lease_hands_out_what_it_holds_and_then_raises(
    server: Any, full: Any
) -> None:
    box = RedisOutbox(server.url, prefix="t" + secrets.token_hex(4))
    try:
        waiting = [msg(n) for n in range(5)]
        box.put_many(waiting)
        now = time.time()
        assert len(box.lease("customerio", 10, now, 30.0)) == 5
        box.retry("customerio", [RetryItem(m.id, now - 1, "503") for m in waiting])
        fresh = [msg(n) for n in range(5, 8)]
        box.put_many(fresh)
        full.fill()
        with pytest.raises(OutboxError, match="memory limit"):
            box.put(msg(99))
        leased = box.lease("customerio", 10, time.time(), 30.0)
        assert sorted(x.message.id for x in leased) == sorted(m.id for m in fresh), \
            "the retries cannot be promoted; what is in the stream is still handed out"
        box.ack("customerio", [x.message.id for x in leased])  # acks go through
        with pytest.raises(OutboxError) as caught:
            box.lease("customerio", 10, time.time(), 30.0)
        assert "OutOfMemoryError" in str(caught.value) and "memory limit" in str(caught.value)
        assert not isinstance(caught.value, ConfigurationError)
        assert box.next_due("customerio", time.time()) is not None
        stats = box.stats(time.time())["customerio"]
        assert (stats.pending, stats.delivered) == (5, 3)
        assert stats.oldest_pending_age is not None and stats.oldest_pending_age >= 0
        full.free()
        back = box.lease("customerio", 10, time.time(), 30.0)
        assert sorted(x.message.id for x in back) == sorted(m.id for m in waiting)
        assert all(x.attempt == 1 for x in back)
        box.ack("customerio", [x.message.id for x in back])
        assert box.lease("customerio", 10, time.time(), 30.0) == []
        stats = box.stats(time.time())["customerio"]
        assert (stats.pending, stats.in_flight, stats.delivered) == (0, 0, 8)
    finally:
        box.close()


def test_at_the_memory_limit_a_new_outbox_starts_on_existing_groups(
    server: Any, full: Any
) -> None:
    prefix = "t" + secrets.token_hex(4)
    RedisOutbox(server.url, prefix=prefix).close()
    full.fill()
    box = RedisOutbox(server.url, prefix=prefix)  # the groups are there: nothing to write
    box.close()
    with pytest.raises(OutboxError, match="memory limit"):
        RedisOutbox(server.url, prefix="t" + secrets.token_hex(4))
