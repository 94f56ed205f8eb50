"""The Outbox protocol, run against every outbox: memory, SQLite and Redis."""

from __future__ import annotations

import time
from typing import Any

import pytest

from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid
from opencdp.outbox.base import DeadItem, Outbox, RetryItem

BOTH = OPENCDP | CUSTOMERIO


def msg(n: int = 0, destinations: int = BOTH, **data: Any) -> Message:
    return Message(new_ulid(), "track", f"user-{n}", "Signed Up", {"n": n, **data}, None,
                   destinations)


def lease_all(box: Any, destination: str, now: float | None = None, limit: int = 1000) -> list:
    return box.lease(destination, limit, time.time() if now is None else now, 30.0)


def in_order(box: Any, got: list[int], sent: list[Message]) -> bool:
    """``got`` (message ids) is ``sent`` in queue order. The cluster queue promises that
    order per person only (each person's calls share one partition; partitions are read in
    turn), so there it compares each person's sequence and the whole set."""
    if box.kind != "cluster":
        return got == [m.id for m in sent]
    person = {m.id: m.identifier for m in sent}
    if sorted(got) != sorted(person):
        return False
    return all([i for i in got if person[i] == who] == [m.id for m in sent if m.identifier == who]
               for who in set(person.values()))


def test_is_an_outbox(outbox: Any) -> None:
    """Every implementation satisfies the runtime-checkable protocol."""
    assert isinstance(outbox, Outbox)


def test_put_then_lease_round_trips_the_message(outbox: Any) -> None:
    """What comes out of a lease equals what was put, data and all."""
    original = Message(new_ulid(), "identify", "user-1", None,
                       {"email": "a@example.com", "nested": {"x": [1, 2]}, "t": 1.5}, 1700000000,
                       BOTH)
    outbox.put(original)
    (got,) = lease_all(outbox, "opencdp")
    assert got.message == original
    assert got.attempt == 0
    assert got.last_error is None


def test_each_destination_gets_only_its_messages(outbox: Any) -> None:
    """A message is handed to the lanes it targets and to no other."""
    only_cdp, only_cio, both = msg(1, OPENCDP), msg(2, CUSTOMERIO), msg(3, BOTH)
    for m in (only_cdp, only_cio, both):
        outbox.put(m)
    assert {x.message.id for x in lease_all(outbox, "opencdp")} == {only_cdp.id, both.id}
    assert {x.message.id for x in lease_all(outbox, "customerio")} == {only_cio.id, both.id}


def test_lease_honours_limit_and_age_order(outbox: Any) -> None:
    """Oldest first, never more than asked, and a leased message is not handed out twice."""
    sent = [msg(i, OPENCDP) for i in range(7)]
    for m in sent:
        outbox.put(m)
    first = outbox.lease("opencdp", 3, time.time(), 30.0)
    second = outbox.lease("opencdp", 10, time.time(), 30.0)
    assert len(first) == 3
    if outbox.kind == "cluster":  # oldest first within each partition, partitions in turn
        got = [x.message.id for x in first + second]
        assert in_order(outbox, got, sent) and len(set(got)) == len(sent)
    else:
        assert [x.message.id for x in first] == [m.id for m in sent[:3]]
        assert [x.message.id for x in second] == [m.id for m in sent[3:]]
    assert lease_all(outbox, "opencdp") == []


def test_destinations_progress_independently(outbox: Any) -> None:
    """Delivered to OpenCDP, still pending for Customer.io."""
    m = msg()
    outbox.put(m)
    (leased,) = lease_all(outbox, "opencdp")
    outbox.ack("opencdp", [leased.message.id])
    stats = outbox.stats(time.time())
    assert (stats["opencdp"].pending, stats["opencdp"].delivered) == (0, 1)
    assert stats["customerio"].pending == 1
    (cio,) = lease_all(outbox, "customerio")
    assert cio.message == m
    assert outbox.stats(time.time())["customerio"].in_flight == 1
    outbox.ack("customerio", [m.id])
    stats = outbox.stats(time.time())
    assert stats["customerio"].delivered == 1
    assert stats["customerio"].pending == stats["customerio"].in_flight == 0


def test_retry_waits_until_not_before_and_counts_the_attempt(outbox: Any) -> None:
    """A retried message comes back only when due, with attempt + 1 and its error."""
    m = msg(destinations=OPENCDP)
    outbox.put(m)
    now = time.time()
    lease_all(outbox, "opencdp", now)
    outbox.retry("opencdp", [RetryItem(m.id, now + 0.4, "HTTP 503")])
    assert lease_all(outbox, "opencdp", now + 0.1) == []
    due = outbox.next_due("opencdp", now + 0.1)
    assert due is not None and now + 0.1 < due <= now + 0.4 + 1e-6
    deadline = time.monotonic() + 10
    got: list = []
    while not got and time.monotonic() < deadline:
        got = lease_all(outbox, "opencdp", max(time.time(), now + 0.41))
        if not got:
            time.sleep(0.01)  # Redis promotes by wall clock; poll with a deadline
    (again,) = got
    assert again.message == m
    assert (again.attempt, again.last_error) == (1, "HTTP 503")
    outbox.ack("opencdp", [m.id])
    assert outbox.stats(time.time())["opencdp"].delivered == 1


def test_next_due(outbox: Any) -> None:
    """Now when something is due, None when nothing is pending."""
    now = time.time()
    assert outbox.next_due("opencdp", now) is None
    m = msg(destinations=OPENCDP)
    outbox.put(m)
    assert outbox.next_due("opencdp", now) == now
    assert outbox.next_due("customerio", now) is None
    lease_all(outbox, "opencdp", now)
    outbox.ack("opencdp", [m.id])
    assert outbox.next_due("opencdp", now) is None


def test_dead_letters_keep_why_and_can_be_replayed(outbox: Any) -> None:
    """Dead letters carry destination, reason, status, attempts and time; replay restarts
    the attempt count."""
    m = msg(destinations=BOTH)
    outbox.put(m)
    now = time.time()
    lease_all(outbox, "customerio", now)
    outbox.retry("customerio", [RetryItem(m.id, now, "timeout")])
    lease_all(outbox, "customerio", now + 1)
    outbox.dead("customerio", [DeadItem(m.id, "HTTP 400: bad attribute", 400)], now + 1)
    (letter,) = outbox.dead_letters()
    assert letter.message == m
    assert letter.destination == "customerio"
    assert (letter.reason, letter.status) == ("HTTP 400: bad attribute", 400)
    assert letter.attempts == 2
    assert letter.dead_at == pytest.approx(now + 1)
    stats = outbox.stats(time.time())
    assert stats["customerio"].dead == 1
    assert stats["customerio"].pending == stats["customerio"].in_flight == 0
    assert stats["opencdp"].pending == 1  # untouched by Customer.io's failure

    assert outbox.replay(destination="customerio") == 1
    assert outbox.dead_letters() == []
    assert outbox.stats(time.time())["customerio"].dead == 0
    (again,) = lease_all(outbox, "customerio")
    assert again.message.id == m.id and again.attempt == 0
    assert [x.message.id for x in lease_all(outbox, "opencdp")] == [m.id]


def test_dead_letter_filters_and_purge(outbox: Any) -> None:
    """Filter by destination and time, newest first, limited; purge deletes what matches."""
    now = time.time()
    sent = [msg(i, BOTH) for i in range(4)]
    for m in sent:
        outbox.put(m)
    lease_all(outbox, "opencdp", now)
    lease_all(outbox, "customerio", now)
    outbox.dead("opencdp", [DeadItem(sent[0].id, "old", 400)], now - 100)
    outbox.dead("opencdp", [DeadItem(sent[1].id, "new", None)], now)
    outbox.dead("customerio", [DeadItem(sent[2].id, "cio", 401)], now - 50)
    outbox.ack("opencdp", [sent[2].id, sent[3].id])
    outbox.ack("customerio", [sent[0].id, sent[1].id, sent[3].id])

    assert [d.reason for d in outbox.dead_letters()] == ["new", "cio", "old"]
    assert [d.reason for d in outbox.dead_letters(destination="opencdp")] == ["new", "old"]
    assert [d.reason for d in outbox.dead_letters(since=now - 60)] == ["new", "cio"]
    assert [d.reason for d in outbox.dead_letters(limit=1)] == ["new"]
    assert outbox.dead_letters(destination="opencdp")[0].status is None

    assert outbox.purge(destination="opencdp", since=now - 60) == 1
    assert [d.reason for d in outbox.dead_letters()] == ["cio", "old"]
    assert outbox.purge() == 2
    assert outbox.dead_letters() == []
    stats = outbox.stats(time.time())
    assert stats["opencdp"].dead == stats["customerio"].dead == 0
    assert lease_all(outbox, "opencdp") == [] and lease_all(outbox, "customerio") == []


def test_replay_filtered_by_since(outbox: Any) -> None:
    """Only dead letters at or after ``since`` are replayed."""
    now = time.time()
    a, b = msg(1, OPENCDP), msg(2, OPENCDP)
    outbox.put(a)
    outbox.put(b)
    lease_all(outbox, "opencdp", now)
    outbox.dead("opencdp", [DeadItem(a.id, "old", 500)], now - 100)
    outbox.dead("opencdp", [DeadItem(b.id, "new", 500)], now)
    assert outbox.replay(since=now - 10) == 1
    assert [x.message.id for x in lease_all(outbox, "opencdp")] == [b.id]
    assert [d.reason for d in outbox.dead_letters()] == ["old"]


def test_acking_twice_or_unknown_ids_is_harmless(outbox: Any) -> None:
    """A late or repeated ack changes nothing and raises nothing."""
    m = msg(destinations=OPENCDP)
    outbox.put(m)
    lease_all(outbox, "opencdp")
    outbox.ack("opencdp", [m.id])
    outbox.ack("opencdp", [m.id, new_ulid()])
    outbox.retry("opencdp", [RetryItem(new_ulid(), time.time(), "x")])
    outbox.dead("opencdp", [DeadItem(new_ulid(), "x", None)], time.time())
    stats = outbox.stats(time.time())["opencdp"]
    assert (stats.pending, stats.in_flight, stats.dead) == (0, 0, 0)
    assert outbox.dead_letters() == []


def test_many_messages_all_come_back_once(outbox: Any) -> None:
    """A few thousand messages across batches: each leased exactly once per destination."""
    sent = {m.id for m in (msg(i) for i in range(3000)) if outbox.put(m) is None}
    for destination in ("opencdp", "customerio"):
        seen: list[int] = []
        for _ in range(100):
            batch = outbox.lease(destination, 500, time.time(), 30.0)
            if not batch:
                break
            ids = [x.message.id for x in batch]
            seen.extend(ids)
            outbox.ack(destination, ids)
        assert len(seen) == len(set(seen)) == 3000
        assert set(seen) == sent
        assert outbox.stats(time.time())[destination].delivered == 3000


def test_a_lane_finds_its_message_behind_many_for_the_other_lane(outbox: Any) -> None:
    """Customer.io's one message behind 1,500 OpenCDP-only ones is reached in a few leases,
    and ``next_due`` keeps saying "now" until it is."""
    for i in range(1500):
        outbox.put(msg(i, OPENCDP))
    target = msg(9999, CUSTOMERIO)
    outbox.put(target)
    got: list = []
    for _ in range(5):
        now = time.time()
        got = outbox.lease("customerio", 100, now, 30.0)
        if got:
            break
        assert outbox.next_due("customerio", now) == now
    assert [x.message.id for x in got] == [target.id]
    assert outbox.stats(time.time())["opencdp"].pending == 1500


def test_a_new_message_is_due_even_for_a_clock_read_before_the_put(outbox: Any) -> None:
    """A lane whose ``now`` was taken a moment before the put still gets the message."""
    earlier = time.time() - 5
    m = msg(destinations=OPENCDP)
    outbox.put(m)
    assert [x.message.id for x in outbox.lease("opencdp", 10, earlier, 30.0)] == [m.id]


def test_oldest_pending_age(outbox: Any) -> None:
    """How long the oldest waiting message has waited; None when nothing waits."""
    assert outbox.stats(time.time())["opencdp"].oldest_pending_age is None
    outbox.put(msg(destinations=OPENCDP))
    age = outbox.stats(time.time() + 10)["opencdp"].oldest_pending_age
    assert age is not None and 9.5 <= age <= 11
    assert outbox.stats(time.time())["customerio"].oldest_pending_age is None


# -- capabilities, enqueue time, own leases, freed state -------------------------------------


def test_declares_every_capability_explicitly(outbox: Any) -> None:
    """Each outbox subclasses the protocol, so the optional capabilities are plain calls."""
    assert Outbox in type(outbox).__mro__
    outbox.maintain(time.time())
    outbox.after_fork()  # same process: a no-op that keeps the queue
    m = msg()
    outbox.put(m)
    assert [x.message.id for x in lease_all(outbox, "opencdp")] == [m.id]
    assert isinstance(outbox.pending_messages(), int)
    shared = outbox.shared_state()
    if outbox.kind in ("redis", "cluster"):
        client, prefix = shared
        assert client.ping() and prefix.startswith("{t") and prefix.endswith("}:")
    else:
        assert shared is None


def test_enqueued_at_is_when_the_message_entered(outbox: Any) -> None:
    """Wall-clock time of the put, kept through a retry; not the event id's time, so a
    caller-supplied old event id does not age the message."""
    day_old = Message((new_ulid() & ((1 << 80) - 1)) | ((int(time.time() * 1000) - 86_400_000)
                                                        << 80),
                      "track", "u", "Old id", {}, None, OPENCDP)
    before = time.time()
    outbox.put(day_old)
    after = time.time()
    (got,) = lease_all(outbox, "opencdp")
    assert got.message == day_old
    assert before - 0.01 <= got.enqueued_at <= after + 0.01
    outbox.retry("opencdp", [RetryItem(day_old.id, time.time(), "HTTP 503")])
    deadline = time.monotonic() + 5
    again: list = []
    while not again and time.monotonic() < deadline:
        again = lease_all(outbox, "opencdp")
    assert again and again[0].attempt == 1
    assert again[0].enqueued_at == pytest.approx(got.enqueued_at, abs=0.001)


def test_a_replayed_dead_letter_is_enqueued_at_the_replay(outbox: Any) -> None:
    m = msg(destinations=OPENCDP)
    outbox.put(m)
    (first,) = lease_all(outbox, "opencdp")
    outbox.dead("opencdp", [DeadItem(m.id, "HTTP 400", 400)], time.time())
    time.sleep(0.05)
    replayed_at = time.time()
    assert outbox.replay() == 1
    (again,) = lease_all(outbox, "opencdp")
    assert again.message == m and again.attempt == 0
    assert again.enqueued_at >= replayed_at - 0.01 > first.enqueued_at


def test_in_flight_here_counts_only_this_instances_unresolved_leases(outbox: Any) -> None:
    sent = [msg(i) for i in range(5)]
    for m in sent:
        outbox.put(m)
    leased = outbox.lease("opencdp", 3, time.time(), 30.0)
    stats = outbox.stats(time.time())
    assert (stats["opencdp"].in_flight_here, stats["customerio"].in_flight_here) == (3, 0)
    assert stats["opencdp"].to_dict()["in_flight_here"] == 3
    outbox.ack("opencdp", [leased[0].message.id])
    outbox.retry("opencdp", [RetryItem(leased[1].message.id, time.time() + 60, "x")])
    outbox.dead("opencdp", [DeadItem(leased[2].message.id, "y", None)], time.time())
    assert outbox.stats(time.time())["opencdp"].in_flight_here == 0


def _per_message_state(box: Any) -> int:
    """Entries of the outbox's own per-message bookkeeping (not the queued messages)."""
    if box.kind == "memory":
        return sum(len(lane.inflight) + lane.held + len(lane.late) + len(lane.spilled)
                   for lane in box._lanes.values())
    if box.kind == "sqlite":
        return sum(len(v) for v in box._leased.values())
    if box.kind == "cluster":
        return sum(len(v) for v in box._where.values()) + sum(
            len(v) for part in box._parts for v in part._inflight.values())
    return sum(len(v) for v in box._inflight.values())


def test_per_message_state_is_freed_when_resolved(outbox: Any) -> None:
    """Acked, retried-then-acked and dead-lettered messages leave nothing behind."""
    sent = [msg(i) for i in range(300)]
    for m in sent:
        outbox.put(m)
    for destination in ("opencdp", "customerio"):
        batch = outbox.lease(destination, 1000, time.time(), 30.0)
        assert len(batch) == 300
        ids = [x.message.id for x in batch]
        outbox.ack(destination, ids[:100])
        outbox.dead(destination, [DeadItem(i, "bad", 400) for i in ids[100:200]], time.time())
        outbox.retry(destination, [RetryItem(i, time.time(), "again") for i in ids[200:]])
        deadline = time.monotonic() + 5
        rest: list = []
        while len(rest) < 100 and time.monotonic() < deadline:
            rest += outbox.lease(destination, 1000, time.time(), 30.0)
        outbox.ack(destination, [x.message.id for x in rest])
    assert _per_message_state(outbox) == 0
    assert outbox.pending_messages() == 0
    stats = outbox.stats(time.time())
    assert all((s.pending, s.in_flight, s.in_flight_here) == (0, 0, 0) for s in stats.values())


def test_put_many_queues_in_order_for_each_destination(outbox: Any) -> None:
    sent = [msg(i, BOTH if i % 2 else OPENCDP) for i in range(250)]
    outbox.put_many(sent)
    outbox.put_many([])
    assert in_order(outbox, [x.message.id for x in lease_all(outbox, "opencdp")], sent)
    assert in_order(outbox, [x.message.id for x in lease_all(outbox, "customerio")],
                    [m for m in sent if m.destinations & CUSTOMERIO])
