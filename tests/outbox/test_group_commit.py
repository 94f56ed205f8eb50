"""Group commit: concurrent puts share round trips, each acknowledged only for its own round
trip, alone costing what a put cost before; across fork, signals and the event loop."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis

from opencdp import AsyncClient
from opencdp.errors import OutboxError
from opencdp.message import CUSTOMERIO, OPENCDP, Message, dumps_message, new_ulid
from opencdp.outbox.base import MaybeStoredError
from opencdp.outbox.commit import GroupCommit
from opencdp.outbox.redis import RedisOutbox

BOTH = OPENCDP | CUSTOMERIO

_PREVIOUS_PUT = """
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1], 'd', ARGV[2])
for i = 3, #ARGV do redis.call('HINCRBY', KEYS[2], 'out:' .. ARGV[i], 1) end
return id
"""
"""The put of the version before group commit, verbatim: what queues written by it hold."""


def msg(n: int, destinations: int = BOTH) -> Message:
    return Message(new_ulid(), "track", f"user-{n}", "Grouped", {"seq": n}, None, destinations)


@pytest.fixture
def box(redis_url: str) -> Iterator[RedisOutbox]:
    outbox = RedisOutbox(redis_url, prefix="g" + secrets.token_hex(5))
    try:
        yield outbox
    finally:
        outbox.close()


# -- the committer on its own ------------------------------------------------------------

class Recorder:
    """A write that records each round trip and fails those holding a row below zero."""

    def __init__(self, delay: float = 0.0) -> None:
        self.rounds: list[list[int]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, rows: Sequence[int]) -> None:
        with self.lock:
            self.rounds.append(list(rows))
        time.sleep(self.delay)
        if any(r < 0 for r in rows):
            raise OutboxError(f"refused a round of {len(rows)}")


def test_alone_every_put_is_its_own_round_trip_at_once() -> None:
    """No timer and no hand-off: a lone producer's put is sent by its own thread."""
    write = Recorder()
    group: GroupCommit[int] = GroupCommit(write, wait=5.0)
    for n in range(50):
        group.commit(n)
    assert write.rounds == [[n] for n in range(50)]
    assert group._committers == [], "no committer thread was needed"


def test_concurrent_puts_share_round_trips_and_each_waits_for_its_own() -> None:
    write = Recorder(delay=0.002)
    group: GroupCommit[int] = GroupCommit(write, wait=10.0)
    done: list[int] = []
    lock = threading.Lock()

    def producer(k: int) -> None:
        for n in range(k * 100, k * 100 + 100):
            group.commit(n)
            sent = [r for trip in list(write.rounds) for r in trip]
            assert n in sent, "acknowledged before its round trip was sent"
            with lock:
                done.append(n)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(done) == list(range(1600))
    sent = [r for trip in write.rounds for r in trip]
    assert sorted(sent) == list(range(1600)), "each put written exactly once"
    assert len(write.rounds) < 1600 / 2, f"{len(write.rounds)} round trips for 1600 puts"


def test_an_error_fails_exactly_the_puts_of_its_round_trip_each_with_its_own() -> None:
    write = Recorder(delay=0.02)
    group: GroupCommit[int] = GroupCommit(write, wait=10.0)
    outcomes: dict[int, BaseException | None] = {}
    started = threading.Barrier(9)

    def producer(n: int) -> None:
        started.wait()
        try:
            group.commit(n)
        except OutboxError as exc:
            outcomes[n] = exc
        else:
            outcomes[n] = None

    threads = [threading.Thread(target=producer, args=(n,))
               for n in (-1, *range(1, 9))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    failed_rounds = [trip for trip in write.rounds if any(r < 0 for r in trip)]
    assert len(failed_rounds) == 1
    failed = set(failed_rounds[0])
    assert {n for n, e in outcomes.items() if e is not None} == failed
    errors = [outcomes[n] for n in failed]
    assert len({id(e) for e in errors}) == len(errors), "one exception object per put"
    assert all(str(e) == f"refused a round of {len(failed)}" for e in errors)


def test_a_put_that_waits_too_long_is_maybe_stored() -> None:
    write = Recorder(delay=0.5)
    group: GroupCommit[int] = GroupCommit(write, wait=0.1)
    leader = threading.Thread(target=group.commit, args=(1,))
    leader.start()
    time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(MaybeStoredError):
        group.commit(2)
    assert time.monotonic() - started < 0.4
    leader.join(5)


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")
def test_a_put_from_a_signal_handler_never_waits_for_its_own_thread() -> None:
    """The handler interrupts this thread while it sends a round trip (holding the line):
    its put raises at once instead of waiting for the frame it interrupted."""
    seen: list[BaseException | None] = []
    group: GroupCommit[int] = GroupCommit(lambda rows: None, wait=30.0)

    def handler(signum: int, frame: Any) -> None:
        started = time.monotonic()
        try:
            group.commit(99)
        except OutboxError as exc:
            seen.append(exc)
        else:
            seen.append(None)
        assert time.monotonic() - started < 1.0

    def write(rows: Sequence[int]) -> None:
        os.kill(os.getpid(), signal.SIGUSR1)  # delivered before this write returns
        time.sleep(0.01)

    group._write = write
    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        group.commit(1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(seen) == 1 and isinstance(seen[0], OutboxError)
    assert "signal handler" in str(seen[0])


# -- on a real Redis -------------------------------------------------------------------

pytest_redis = pytest.mark.redis


@pytest_redis
def test_sixteen_threads_share_round_trips_and_everything_is_stored_once(
        box: RedisOutbox) -> None:
    sent = [msg(n) for n in range(1600)]

    def producer(k: int) -> None:
        for m in sent[k::16]:
            box.put(m)

    rounds = box._group.rounds
    threads = [threading.Thread(target=producer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    trips = box._group.rounds - rounds
    assert trips < 1600, f"{trips} round trips for 1600 puts: nothing was shared"
    stats = box.stats(time.time())
    assert stats["opencdp"].pending == stats["customerio"].pending == 1600
    leased = box.lease("opencdp", 5000, time.time(), 30.0)
    assert sorted(x.message.id for x in leased) == sorted(m.id for m in sent)
    for k in range(16):  # each producer's puts in its order
        mine = {m.id for m in sent[k::16]}
        assert [x.message.id for x in leased if x.message.id in mine] == \
            [m.id for m in sent[k::16]]


@pytest_redis
def test_a_stream_written_by_the_previous_version_is_read(box: RedisOutbox,
                                                          redis_url: str) -> None:
    old = redis.Redis.from_url(redis_url).register_script(_PREVIOUS_PUT)
    before = [msg(n) for n in range(5)]
    for m in before:
        old(keys=[box._stream, box._counts],
            args=[dumps_message(m), str(BOTH), "opencdp", "customerio"])
    after = msg(5)
    box.put(after)
    for destination in ("opencdp", "customerio"):
        leased = box.lease(destination, 100, time.time(), 30.0)
        assert [x.message for x in leased] == [*before, after]
        box.ack(destination, [x.message.id for x in leased])
    stats = box.stats(time.time())
    assert (stats["opencdp"].delivered, stats["customerio"].pending) == (6, 0)


@pytest_redis
def test_a_forked_child_gets_its_own_committer(box: RedisOutbox) -> None:
    box.put(msg(0))
    threads = [threading.Thread(target=box.put, args=(msg(n),)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            box.after_fork()
            assert box._group._committers == [] and not box._group._line
            kids = [threading.Thread(target=box.put, args=(msg(n),)) for n in range(100, 116)]
            for t in kids:
                t.start()
            for t in kids:
                t.join(30)
            code = 0
        except BaseException:
            code = 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    result = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert result == b"\x00"
    box.put(msg(200))
    assert box.stats(time.time())["opencdp"].pending == 1 + 8 + 16 + 1


@pytest_redis
def test_async_client_awaits_the_commit_without_blocking_its_loop(redis_url: str,
                                                                 tmp_path: Any) -> None:
    """Sixteen coroutines put through AsyncClient; a ticker on the same loop keeps ticking
    while Redis is stopped (SIGSTOP) and the puts wait for their timeout and spill."""
    own = sys.modules["opencdp_tests_redis_server"].RestartableRedis().start()

    async def run() -> tuple[int, int, int, float]:
        client = AsyncClient(cdp_api_key="k", cdp_endpoint="http://127.0.0.1:9/g",
                             cdp_fallback_endpoints=[], start_worker=False,
                             register_atexit=False, queue_timeout=0.3,
                             queue=f"{own.url}?prefix=a{secrets.token_hex(4)}",
                             spill_path=str(tmp_path / "spill.db"))
        await client.identify("u", {"email": "u@example.com"})
        await asyncio.gather(*(client.track(f"user-{n}", "grouped", {"seq": n})
                               for n in range(160)))
        stored = client.health().to_dict()["destinations"]["opencdp"]["queue"]["pending"]
        own.pause()
        ticks = 0
        worst = 0.0

        async def ticker() -> None:
            nonlocal ticks, worst
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                worst, last = max(worst, now - last), now
                ticks += 1

        tick = asyncio.ensure_future(ticker())
        await asyncio.gather(*(client.track(f"user-{n}", "grouped", {"seq": n})
                               for n in range(16)))
        tick.cancel()
        own.resume()
        health = client.health().to_dict()
        await client.close(timeout=2)
        queue = health["destinations"]["opencdp"]["queue"]
        return stored, health["intake_failures"], queue["spilled"], worst

    try:
        stored, failures, spilled, worst = asyncio.run(run())
    finally:
        own.close()
    assert stored == 161
    assert (failures, spilled) == (0, 16), "the puts Redis did not answer went to the spill"
    assert worst < 0.2, f"the loop stalled {worst:.3f} s while puts waited on Redis"
