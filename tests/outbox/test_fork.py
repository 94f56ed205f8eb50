"""After a fork, nothing of the parent's outbox is usable in the child: connections, locks,
SQLite handles, buffered rows and leases are the child's own, and both keep working."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from opencdp.message import OPENCDP, Message, new_ulid

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def msg(n: int) -> Message:
    return Message(new_ulid(), "track", f"user-{n}", "Forked", {"n": n}, None, OPENCDP)


def _handles(box: Any) -> list[Any]:
    """Everything that must not cross a fork."""
    kind = box.kind
    if kind == "memory":
        return [box._lock, box._bytes_lock, box._lanes["opencdp"].inflight]
    if kind == "sqlite":
        return [box._db, box._lock, box._commit_lock, box._buffer]
    if kind == "cluster":
        return [box._where, box._balancing, *(h for part in box._parts
                                               for h in (part._redis, part._put_redis,
                                                         part._group, part._inflight))]
    return [box._redis, box._put_redis, box._buffer, box._group, box._inflight]


def test_after_fork_leaves_nothing_of_the_parents(outbox: Any) -> None:
    box = outbox
    kind = box.kind
    before = msg(0)
    box.put(before)
    leased = box.lease("opencdp", 10, time.time(), 60.0)
    assert [x.message.id for x in leased] == [before.id]
    parent_handles = _handles(box)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into pytest
        code = 1
        try:
            box.after_fork()
            box.after_fork()  # twice is harmless
            child_handles = _handles(box)
            fresh = not any(c is p for c in child_handles for p in parent_handles)
            own = box.stats(time.time())["opencdp"].in_flight_here == 0
            box.put(msg(1))
            code = 0 if fresh and own else 2
        except BaseException:
            code = 3
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    result = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert result == b"\x00"
    assert all(a is b for a, b in zip(_handles(box), parent_handles, strict=True))
    box.ack("opencdp", [before.id])  # the parent's lease is still the parent's
    later = box.lease("opencdp", 10, time.time(), 60.0)
    if kind == "memory":
        assert later == []  # the child's memory is the child's
    else:
        assert [x.message.name for x in later] == ["Forked"] and len(later) == 1
    assert box.stats(time.time())["opencdp"].delivered == 1
