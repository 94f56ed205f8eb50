"""The Redis outbox, and what shares its connection (the idempotency guard, the shared rate
bucket), when Redis refuses writes (a user without write rights, a read-only replica, the
memory limit with ``noeviction``) and when it stalls (``CLIENT PAUSE``). Each test that
changes a server starts one of its own, so the session's shared server is never disturbed."""

from __future__ import annotations

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


@pytest.fixture
def server(redis_url: str) -> Iterator[Any]:
    """A redis-server of this test's own (``redis_url`` makes sure one can be had, and
    fails under CI=true when it cannot)."""
    own = sys.modules["opencdp_tests_redis_server"].RestartableRedis().start()
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


class Pause:
    """``CLIENT PAUSE`` from a connection made before the pause (a new one would wait out
    the pause itself: redis-py's connection handshake is paused too). ``resume`` ends a
    ``WRITE`` pause at once; an ``ALL`` pause pauses ``CLIENT UNPAUSE`` too, so it waits the
    pause out: tests keep those pauses short."""

    LENGTH = {"WRITE": 10.0, "ALL": 4.0}

    def __init__(self, server: Any) -> None:
        self.control = admin(server)
        self.control.ping()

    def __call__(self, seconds: float, mode: str = "ALL") -> None:
        self.control.execute_command("CLIENT", "PAUSE", int(seconds * 1000), mode)

    def resume(self) -> None:
        self.control.execute_command("CLIENT", "UNPAUSE")


@pytest.fixture
def paused(server: Any) -> Iterator[Pause]:
    """Pauses the server's clients on call; unpaused at the end whatever happened."""
    pause = Pause(server)
    try:
        yield pause
    finally:
        pause.resume()


class Full:
    """``fill()`` puts the server at its memory limit (``noeviction``), ``free()`` lifts it."""

    def __init__(self, server: Any) -> None:
        self.control = admin(server)

    def fill(self) -> None:
        self.control.config_set("maxmemory-policy", "noeviction")
        # Well under what is used: memory freed by acks must not lift the limit by itself.
        self.control.config_set("maxmemory", int(self.control.info("memory")["used_memory"]) // 2)

    def free(self) -> None:
        self.control.config_set("maxmemory", 0)


@pytest.fixture
def full(server: Any) -> Iterator[Full]:
    """Lifted at the end whatever happened."""
    limit = Full(server)
    try:
        yield limit
    finally:
        limit.free()


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
    helper = sys.modules["opencdp_tests_redis_server"]
    replica = helper.RestartableRedis().start()
    try:
        admin(replica).execute_command("REPLICAOF", "127.0.0.1", str(server.port))
        with pytest.raises(ConfigurationError,
                           match=r"read-only replica.*point the queue at the primary"):
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
        refused = msg(9, CUSTOMERIO)
        box.put_many([*waiting, refused])
        now = time.time()
        assert len(box.lease("customerio", 10, now, 30.0)) == 6
        box.retry("customerio", [RetryItem(m.id, now - 1, "503") for m in waiting])
        box.dead("customerio", [_dead(refused.id)], now)
        fresh = [msg(n) for n in range(5, 8)]
        box.put_many(fresh)
        full.fill()
        with pytest.raises(OutboxError, match="memory limit"):
            box.put(msg(99))
        leased = box.lease("customerio", 10, time.time(), 30.0)
        assert sorted(x.message.id for x in leased) == sorted(m.id for m in fresh), \
            "the retries cannot be promoted; what is in the stream is still handed out"
        box.ack("customerio", [x.message.id for x in leased])  # acks go through
        assert box.purge("customerio") == 1  # and so does XDEL
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


# -- end to end: a client on its own server, both platforms over loopback -----------------


def _client(sandbox: Any, server: Any, tmp_path: Path, **extra: Any) -> Client:
    from health.support import client_options

    return Client(**client_options(
        sandbox, queue=f"{server.url}?prefix=e{secrets.token_hex(4)}&timeout=2",
        spill_path=str(tmp_path / "spill.db"), **extra))


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not reached within {timeout} s: {what}"
        time.sleep(0.05)


def _all_once(sandbox: Any, count: int) -> None:
    """Every numbered event stored on both platforms; Customer.io exactly once each, OpenCDP
    resends flagged by their Idempotency-Key."""
    cio, cdp = stored(sandbox, "customerio"), stored(sandbox, "opencdp")
    assert sorted(cio) == list(range(count)) and set(cio.values()) == {1}, cio
    assert sorted(cdp) == list(range(count))
    assert sum(n - 1 for n in cdp.values()) == sandbox.stats()["opencdp"]["duplicates"]


@pytest.mark.timeout(120)
def test_memory_limit_with_retries_waiting_then_freed_delivers_all_exactly_once(
    sandbox: Any, server: Any, full: Any, tmp_path: Path
) -> None:
    from opencdp.config import RetryConfig

    sandbox.set_faults({"customerio": {"error_rate": 1.0, "statuses": [503]}})
    client = _client(sandbox, server, tmp_path,
                     retry=RetryConfig(base_delay=0.2, max_delay=0.4, max_attempts=1000))
    try:
        for seq in range(40):
            client.track(f"user-{seq % 7}", "edge", {"seq": seq})
        _wait(lambda: len(stored(sandbox, "opencdp")) == 40, 30, "OpenCDP has the first 40")
        _wait(lambda: sandbox.stats()["customerio"]["requests"] >= 3, 30, "Customer.io refused")
        full.fill()
        sandbox.set_faults({"customerio": None})
        for seq in range(40, 50):
            client.track(f"user-{seq % 7}", "edge", {"seq": seq})  # accepted: spilled
        engine = client._engine
        _wait(lambda: engine.dispatcher.internal_errors.get("OCDP307", 0) >= 2, 20,
              "the refused promotion is raised as OCDP307")
        assert len(stored(sandbox, "customerio")) < 40, "nothing parked can come back yet"
        queue = client.health().to_dict()["destinations"]["customerio"]["queue"]
        assert queue["pending"] >= 10 and queue["oldest_pending_age"] is not None
        full.free()
        _wait(lambda: len(stored(sandbox, "customerio")) == 50
              and len(stored(sandbox, "opencdp")) == 50, 60, "everything after the memory is freed")
        assert client.flush(10)
        _all_once(sandbox, 50)
    finally:
        client.close(timeout=2)


# -- 3. a paused server: the caller's path is bounded by queue_timeout, close by its timeout -


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["WRITE", "ALL"])
def test_twenty_tracks_with_event_ids_while_redis_is_paused_take_under_two_seconds(
    sandbox: Any, server: Any, paused: Any, tmp_path: Path, mode: str
) -> None:
    client = _client(sandbox, server, tmp_path)
    try:
        client.track("warm", "edge", {"seq": 0}, event_id=ulid_str(new_ulid()))
        assert client.flush(10)
        ids = [ulid_str(new_ulid()) for _ in range(20)]
        paused(Pause.LENGTH[mode], mode)
        started = time.monotonic()
        for seq, event_id in enumerate(ids, start=1):
            client.track(f"user-{seq}", "edge", {"seq": seq}, event_id=event_id)
        took = time.monotonic() - started
        assert took < 2.0, f"20 tracks took {took:.2f} s"
        again = time.monotonic()
        client.track("user-1", "edge", {"seq": 1}, event_id=ids[0])  # a repeat, seen locally
        assert time.monotonic() - again < 0.5
        paused.resume()
        assert client.flush(20), client.health().to_dict()
        guard = client._engine.idempotency
        assert (guard.fallbacks >= 21, guard.suppressed) == (True, 1), guard
        _all_once(sandbox, 21)
    finally:
        client.close(timeout=2)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["WRITE", "ALL"])
def test_close_returns_within_its_timeout_while_redis_is_paused(
    sandbox: Any, server: Any, paused: Any, tmp_path: Path, mode: str
) -> None:
    client = _client(sandbox, server, tmp_path)
    queue = client._engine.config.queue
    client.track("warm", "edge", {"seq": 0})
    assert client.flush(10)
    paused(Pause.LENGTH[mode], mode)
    for seq in range(1, 6):
        client.track(f"user-{seq}", "edge", {"seq": seq})  # spilled
    started = time.monotonic()
    drained = client.close(timeout=2)
    took = time.monotonic() - started
    assert took < 3.0, f"close(timeout=2) took {took:.2f} s with Redis paused ({mode})"
    assert drained is False
    paused.resume()
    from health.support import client_options

    after = Client(**client_options(sandbox, queue=queue, spill_path=str(tmp_path / "spill.db")))
    try:
        assert after.flush(20)
        _wait(lambda: len(stored(sandbox, "customerio")) == 6, 20, "the spilled calls")
        _all_once(sandbox, 6)
    finally:
        after.close(timeout=2)


def test_every_client_of_the_queue_is_bounded_while_paused(
    server: Any, paused: Any
) -> None:
    box = RedisOutbox(server.url, prefix="t" + secrets.token_hex(4), put_timeout=0.05,
                      socket_timeout=0.5)
    try:
        shared, prefix = box.shared_state()  # type: ignore[misc]
        guard = SharedIdempotencyGuard(shared, f"{prefix}idem:", ttl=60)
        bucket = SharedTokenBucket(shared, f"{prefix}rate:opencdp", rate=1000)
        assert guard.claim("before")
        paused(Pause.LENGTH["ALL"], "ALL")
        started = time.monotonic()
        claims = [guard.claim(f"k{n}") for n in range(100)]
        repeats = [guard.claim(f"k{n}") for n in range(100)]
        waits = [bucket.take() for _ in range(100)]
        guard.release("k0")
        took = time.monotonic() - started
        assert took < 0.5, f"300 calls took {took:.2f} s"
        assert all(claims) and not any(repeats) and guard.suppressed == 100
        assert sum(1 for w in waits if w == 0.0) >= 99
        assert guard.fallbacks == 201 and bucket.fallbacks == 100
        started = time.monotonic()
        with pytest.raises(OutboxError, match="did not answer in time"):
            box.stats(time.time())
        assert time.monotonic() - started < 1.5, "stats waits at most a second"
        started = time.monotonic()
        with pytest.raises(OutboxError, match="did not answer in time"):
            box.next_due("opencdp", time.time())
        assert time.monotonic() - started < 1.0, "one socket_timeout, no retries by redis-py"
        started = time.monotonic()
        box.close()
        assert time.monotonic() - started < 0.5, "close waits at most put_timeout"
    finally:
        box.close()


# -- 4. stored not-before times and ages against the engine's clock -------------------------


@pytest.fixture
def box(redis_url: str) -> Iterator[RedisOutbox]:
    made = RedisOutbox(redis_url, prefix="t" + secrets.token_hex(6))
    try:
        yield made
    finally:
        made.close()


def test_a_not_before_time_beyond_max_ahead_is_due_now(box: RedisOutbox) -> None:
    """Written under a clock that has since stepped back: promoted at once, not an hour on."""
    near, far = msg(1), msg(2)
    box.put_many([near, far])
    now = time.time()
    assert len(box.lease("customerio", 10, now, 30.0)) == 2
    box.retry("customerio", [RetryItem(near.id, now + 60, "503"),
                             RetryItem(far.id, now + MAX_AHEAD + 3600, "503")])
    assert box.next_due("customerio", now) == now
    leased = box.lease("customerio", 10, now, 30.0)
    assert [x.message.id for x in leased] == [far.id]
    box.ack("customerio", [far.id])
    due = box.next_due("customerio", now)
    assert due is not None and now + 59 < due <= now + 60, "a retry within MAX_AHEAD waits"
    assert box.lease("customerio", 10, now, 30.0) == []


def test_the_wall_clock_stepped_back_a_day_moves_no_retry_and_no_age(box: RedisOutbox) -> None:
    manual = clocks.ManualClock()
    with clocks.use(clocks.SteadyClock(manual)):
        m = msg(1)
        box.put(m)
        now = clocks.wall()
        assert len(box.lease("opencdp", 10, now, 0.2)) == 1
        box.retry("opencdp", [RetryItem(m.id, now + 0.3, "503")])
        manual.step(-86_400)
        time.sleep(0.35)
        now = clocks.wall()
        assert box.next_due("opencdp", now) == now
        again = box.lease("opencdp", 10, now, 0.2)
        assert [x.message.id for x in again] == [m.id] and again[0].attempt == 1
        time.sleep(0.3)  # the lease expires: claimed back on the engine's clock
        claimed = box.lease("opencdp", 10, clocks.wall(), 0.2)
        assert [x.message.id for x in claimed] == [m.id]
        age = box.stats(clocks.wall())["opencdp"].oldest_pending_age
        assert age is not None and 0.5 < age < 5
    with clocks.use(manual):  # the engine itself sees the step: ages stay >= 0
        assert box.stats(clocks.wall())["opencdp"].oldest_pending_age == 0.0


# -- 5. what is pending has an age ---------------------------------------------------------


def test_oldest_pending_age_follows_a_message_from_put_to_ack(box: RedisOutbox) -> None:
    def age() -> float | None:
        return box.stats(time.time())["customerio"].oldest_pending_age

    assert age() is None
    m = msg(1)
    box.put(m)
    box.put(msg(2, OPENCDP))
    assert (age() or -1) >= 0, "unread in the stream"
    time.sleep(0.6)
    leased = box.lease("customerio", 10, time.time(), 30.0)
    assert [x.message.id for x in leased] == [m.id]
    assert (age() or 0) >= 0.5, "leased"
    box.retry("customerio", [RetryItem(m.id, time.time() + 5, "503")])
    assert (age() or 0) >= 0.5, "parked for a retry: aged from its first put"
    box.retry("customerio", [])
    assert box.lease("customerio", 10, time.time() + 5, 30.0)[0].message.id == m.id
    assert (age() or 0) >= 0.5, "re-added for its retry: still aged from its first put"
    box.ack("customerio", [m.id])
    assert age() is None
    stats = box.stats(time.time())["opencdp"]
    assert stats.pending == 2 and (stats.oldest_pending_age or -1) >= 0.5
