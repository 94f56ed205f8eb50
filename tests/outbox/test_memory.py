"""The memory queue's bounds: all or none across destinations, and a byte bound that holds
(measured with tracemalloc)."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

import pytest

from opencdp.clock import ManualClock, use
from opencdp.errors import ConfigurationError, QueueFullError
from opencdp.message import CUSTOMERIO, OPENCDP, Message, dumps_message, new_ulid
from opencdp.outbox.memory import MemoryOutbox

BOTH = OPENCDP | CUSTOMERIO


def msg(n: int = 0, destinations: int = BOTH, size: int = 10) -> Message:
    return Message(new_ulid(), "track", f"user-{n:05d}", "Viewed", {"pad": "x" * size}, None,
                   destinations)


def lease_ids(box: MemoryOutbox, destination: str) -> list[int]:
    return [x.message.id for x in box.lease(destination, 10_000, time.time(), 30.0)]


def test_block_with_one_lane_full_queues_nowhere() -> None:
    """QueueFullError means "not queued anywhere": the free lane did not get it either."""
    drops: list[tuple[str, str]] = []
    box = MemoryOutbox(max_size=3, full_policy="block", full_timeout=0.05,
                       on_drop=lambda code, dest, m: drops.append((code, dest)))
    for i in range(3):
        box.put(msg(i, CUSTOMERIO))
    refused = msg(99, BOTH)
    with pytest.raises(QueueFullError, match="not queued"):
        box.put(refused)
    assert lease_ids(box, "opencdp") == []
    assert refused.id not in lease_ids(box, "customerio")
    assert drops == [("OCDP301", "customerio")]
    assert box.stats(time.time())["customerio"].dropped == {"queue_full": 1}


def test_block_queues_everywhere_once_every_lane_has_room() -> None:
    box = MemoryOutbox(max_size=1, full_policy="block", full_timeout=2.0)
    box.put(msg(1, CUSTOMERIO))
    late = msg(2, BOTH)
    queued = threading.Event()

    def put() -> None:
        box.put(late)
        queued.set()

    # A clock that stands still: the put's deadline never comes, so only room ends its wait.
    with use(ManualClock(frozen=True)):
        putter = threading.Thread(target=put)
        putter.start()
        assert not queued.wait(0.05)  # blocked: the customerio lane is full
        box.lease("customerio", 10, time.time(), 30.0)
        assert queued.wait(10)
        putter.join(10)
    assert lease_ids(box, "opencdp") == [late.id]
    assert lease_ids(box, "customerio") == [late.id]


def test_max_bytes_drop_oldest_keeps_the_newest_within_the_bound() -> None:
    one = len(dumps_message(msg(0, OPENCDP, size=1000)))
    box = MemoryOutbox(max_size=1_000_000, max_bytes=10 * one)
    sent = [msg(i, OPENCDP, size=1000) for i in range(25)]
    for m in sent:
        box.put(m)
        assert box.queued_bytes()["opencdp"] <= 10 * one
    assert box.stats(time.time())["opencdp"].dropped == {"drop_oldest": 15}
    assert lease_ids(box, "opencdp") == [m.id for m in sent[15:]]
    box.ack("opencdp", [m.id for m in sent[15:]])
    assert box.queued_bytes() == {"opencdp": 0, "customerio": 0}


def test_max_bytes_block_raises_and_queues_nothing() -> None:
    one = len(dumps_message(msg(0, BOTH, size=500)))
    box = MemoryOutbox(max_size=1_000_000, max_bytes=3 * one, full_policy="block",
                       full_timeout=0.02)
    for i in range(3):
        box.put(msg(i, BOTH, size=500))
    with pytest.raises(QueueFullError, match="bytes"):
        box.put(msg(9, BOTH, size=500))
    assert box.queued_bytes() == {"opencdp": 3 * one, "customerio": 3 * one}
    assert len(lease_ids(box, "opencdp")) == 3


def test_a_message_larger_than_the_bound_still_fits_an_empty_queue() -> None:
    box = MemoryOutbox(max_bytes=100)
    big = msg(size=5000)
    box.put(big)
    assert lease_ids(box, "opencdp") == [big.id]


@pytest.mark.parametrize("bad", [0, -1, 2.5, "1000", True])
def test_bad_max_bytes(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_queue_bytes"):
        MemoryOutbox(max_bytes=bad)  # type: ignore[arg-type]


def _growth(box: MemoryOutbox, count: int, size: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            box.put(msg(i, BOTH, size=size))
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_under_max_bytes() -> None:
    """20,000 puts of 2 KB into a 1 MB bound: growth stays a small multiple of the bound,
    a twentieth of what the same puts cost unbounded."""
    bound = 1_000_000
    bounded = _growth(MemoryOutbox(max_size=1_000_000, max_bytes=bound), 20_000, 2000)
    unbounded = _growth(MemoryOutbox(max_size=1_000_000), 20_000, 2000)
    assert bounded < 3 * bound, bounded
    assert unbounded > 20 * bounded, (unbounded, bounded)


def test_memory_is_freed_after_acks_and_dead_letters() -> None:
    """Once everything is resolved, what is left is the dead letters alone."""
    box = MemoryOutbox(max_size=1_000_000, max_bytes=50_000_000, max_dead=10)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(5000):
            box.put(msg(i, BOTH, size=2000))
        from opencdp.outbox.base import DeadItem

        for destination in ("opencdp", "customerio"):
            ids = lease_ids(box, destination)
            box.ack(destination, ids[:-50])
            box.dead(destination, [DeadItem(i, "bad", 400) for i in ids[-50:]], time.time())
            del ids
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert box.queued_bytes() == {"opencdp": 0, "customerio": 0}
    assert left < 150_000, left  # 20 dead letters of 2 KB and the lanes' bookkeeping
