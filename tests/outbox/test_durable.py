"""What only the durable outboxes promise: state outlives the instance, leases expire, several
instances (processes, hosts) share one queue without handing a message out twice."""

from __future__ import annotations

import os
import secrets
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opencdp.errors import ConfigurationError
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid
from opencdp.outbox.base import DeadItem, RetryItem
from opencdp.outbox.sqlite import SQLiteOutbox
from support.queues import drain

BOTH = OPENCDP | CUSTOMERIO


def msg(n: int = 0, destinations: int = BOTH) -> Message:
    return Message(new_ulid(), "track", f"user-{n}", "Ordered", {"n": n}, None, destinations)


@pytest.fixture
def opener(
    durable_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    """Opens instances that share one durable queue; closes them all afterwards."""
    opened: list[Any] = []
    prefix = "t" + secrets.token_hex(6)

    def open_(**options: Any) -> Any:
        if durable_kind == "sqlite":
            box: Any = SQLiteOutbox(tmp_path / "q.db", **options)
        else:
            from opencdp.outbox.redis import RedisOutbox

            box = RedisOutbox(request.getfixturevalue("redis_url"), prefix=prefix, **options)
        opened.append(box)
        return box

    yield open_
    for box in opened:
        box.close()


def test_state_survives_close_and_reopen(opener: Callable[..., Any]) -> None:
    """Pending, half-delivered, retried and dead messages are all there after a restart."""
    first = opener()
    a, b, c = msg(1), msg(2), msg(3, OPENCDP)
    for m in (a, b, c):
        first.put(m)
    now = time.time()
    first.lease("opencdp", 10, now, 30.0)
    first.ack("opencdp", [a.id])
    first.retry("opencdp", [RetryItem(b.id, now, "HTTP 502")])
    first.dead("opencdp", [DeadItem(c.id, "HTTP 422", 422)], now)
    first.close()

    second = opener()
    stats = second.stats(time.time())
    cdp = stats["opencdp"]
    assert (cdp.delivered, cdp.pending, cdp.dead) == (1, 1, 1)
    assert stats["customerio"].pending == 2
    (retried,) = second.lease("opencdp", 10, time.time() + 1, 30.0)
    assert (retried.message, retried.attempt, retried.last_error) == (b, 1, "HTTP 502")
    assert [d.message for d in second.dead_letters()] == [c]
    assert sorted(drain(second, "customerio")) == sorted([a.id, b.id])


def test_two_instances_never_share_a_lease(opener: Callable[..., Any]) -> None:
    """Two consumers on one queue split the messages between them; none is handed out twice."""
    producer, one, two = opener(), opener(), opener()
    sent = [msg(i, OPENCDP) for i in range(400)]
    for m in sent:
        producer.put(m)
    got: list[int] = []
    for _ in range(200):
        a = one.lease("opencdp", 37, time.time(), 30.0)
        b = two.lease("opencdp", 41, time.time(), 30.0)
        got += [x.message.id for x in a + b]
        if not a and not b:
            break
    assert len(got) == len(set(got)) == 400


def test_expired_lease_is_redelivered_with_the_same_attempt(opener: Callable[..., Any]) -> None:
    """A consumer that leased and vanished gives its messages back once the lease expires."""
    crashed, survivor = opener(), opener()
    m = msg(destinations=OPENCDP)
    crashed.put(m)
    now = time.time()
    crashed.lease("opencdp", 10, now, 30.0)
    crashed.retry("opencdp", [RetryItem(m.id, now, "HTTP 500")])
    (held,) = crashed.lease("opencdp", 10, now + 0.01, 0.3)  # then "crashes" holding attempt 1
    assert held.attempt == 1
    assert survivor.lease("opencdp", 10, time.time(), 0.3) == []
    deadline = time.monotonic() + 10
    again: list[Any] = []
    while not again and time.monotonic() < deadline:
        time.sleep(0.05)  # Redis measures idle time on its own clock: poll with a deadline
        again = survivor.lease("opencdp", 10, time.time() + 0.3, 0.3)
    (back,) = again
    assert (back.message, back.attempt, back.last_error) == (m, 1, "HTTP 500")
    survivor.ack("opencdp", [m.id])
    assert survivor.stats(time.time())["opencdp"].delivered == 1


def test_concurrent_putters_all_land(opener: Callable[..., Any]) -> None:
    """Eight threads putting at once (group commit on SQLite): every message is stored."""
    box = opener()
    per_thread = 250
    ids: list[list[int]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def work(k: int) -> None:
        start.wait(timeout=10)
        for i in range(per_thread):
            m = msg(i, OPENCDP)
            box.put(m)
            ids[k].append(m.id)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    expected = {i for chunk in ids for i in chunk}
    assert len(expected) == 8 * per_thread
    reader = opener()
    got = drain(reader, "opencdp")
    assert len(got) == len(set(got)) and set(got) == expected


def test_batched_mode_commits_within_the_interval(opener: Callable[..., Any]) -> None:
    """Batched puts return at once and reach the store within a few milliseconds."""
    writer = opener(durability="batched", batch_interval=0.005)
    reader = opener()
    sent = [msg(i, OPENCDP) for i in range(500)]
    for m in sent:
        writer.put(m)
    deadline = time.monotonic() + 10
    seen = 0
    while seen < len(sent) and time.monotonic() < deadline:
        time.sleep(0.005)
        seen = reader.stats(time.time())["opencdp"].pending
    assert seen == len(sent)
    writer.put(last := msg(999, OPENCDP))
    writer.close()  # close commits what is still buffered
    assert last.id in drain(reader, "opencdp")


def test_unknown_destination_is_a_configuration_error(opener: Callable[..., Any]) -> None:
    box = opener()
    with pytest.raises(ConfigurationError, match="unknown destination"):
        box.lease("segment", 10, time.time(), 30.0)


# SQLite only -------------------------------------------------------------------------------


def test_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "outbox.db"
    with SQLiteOutbox(path) as box:
        box.put(msg())
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(str(path) + "-wal").st_mode) == 0o600
        mode = box._db.execute("PRAGMA journal_mode").fetchone()[0]
        sync = box._db.execute("PRAGMA synchronous").fetchone()[0]
        assert (mode, sync) == ("wal", 1)  # 1 == NORMAL


def test_sqlite_unwritable_path_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError, match="cannot create"):
        SQLiteOutbox(blocker / "outbox.db")


def test_sqlite_rowids_are_never_reused_below_the_fan_out_mark(tmp_path: Path) -> None:
    """Deleting the newest finished row must not let the next put slip under the mark."""
    with SQLiteOutbox(tmp_path / "q.db") as box:
        for round_ in range(5):
            m = msg(round_, OPENCDP)
            box.put(m)
            assert [x.message.id for x in box.lease("opencdp", 10, time.time(), 30)] == [m.id]
            box.ack("opencdp", [m.id])
        assert box.stats(time.time())["opencdp"].delivered == 5


def test_sqlite_finished_messages_are_deleted(tmp_path: Path) -> None:
    with SQLiteOutbox(tmp_path / "q.db") as box:
        for i in range(50):
            box.put(msg(i))
        drain(box, "opencdp")
        drain(box, "customerio")
        box.put(msg(99, OPENCDP))  # moves the fan-out mark past the last finished row
        drain(box, "opencdp")
        assert box._db.execute("SELECT count(*) FROM msgs").fetchone()[0] == 1
        assert box._db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0


def test_sqlite_child_process_after_fork_uses_its_own_connection(tmp_path: Path) -> None:
    """A forked child can put into the outbox it inherited; the parent sees the row."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    with SQLiteOutbox(tmp_path / "q.db") as box:
        box.put(msg(1, OPENCDP))
        with warnings.catch_warnings():  # 3.12+ warns about forking a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                box.put(msg(2, OPENCDP))
                box.close()
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert len(drain(box, "opencdp")) == 2


def test_next_due_does_not_make_a_lane_spin(opener: Callable[..., Any]) -> None:
    """A dispatcher-style loop (sleep until next_due, then lease) recovers a dead consumer's
    lease without spinning: an empty lease right after "due now" is rare."""
    crashed, lane = opener(), opener()
    m = msg(destinations=OPENCDP)
    crashed.put(m)
    crashed.lease("opencdp", 10, time.time(), 0.3)
    empty_when_due = 0
    got: list[Any] = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        now = time.time()
        due = lane.next_due("opencdp", now)
        assert due is not None  # something is in flight
        if due > now:
            time.sleep(min(due - now, 0.5))
            continue
        got = lane.lease("opencdp", 10, time.time(), 0.3)
        empty_when_due += not got
    assert [x.message.id for x in got] == [m.id]
    assert empty_when_due <= 3


def test_sqlite_group_commit_commits_queued_callers_together(tmp_path: Path) -> None:
    """Callers that queue while a commit runs are committed by one transaction, and each
    returns only after it."""
    with SQLiteOutbox(tmp_path / "q.db") as box:
        sent = [msg(i, OPENCDP) for i in range(4)]
        returned: list[int] = []
        box._commit_lock.acquire()  # a commit "in progress"
        threads = [threading.Thread(target=lambda m=m: (box.put(m), returned.append(m.id)))
                   for m in sent]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(box._batch.rows) < 4 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(box._batch.rows) == 4 and returned == []  # all queued, none returned
        commits: list[int] = []
        insert = box._insert
        box._insert = lambda rows: (commits.append(len(rows)), insert(rows))[1]  # type: ignore[method-assign]
        box._commit_lock.release()
        for t in threads:
            t.join(timeout=10)
        assert sorted(returned) == sorted(m.id for m in sent)
        assert commits == [4]
        assert sorted(drain(box, "opencdp")) == sorted(m.id for m in sent)
