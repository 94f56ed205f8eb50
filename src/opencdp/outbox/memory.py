"""The default outbox: bounded, in-process, fast.

``put`` runs on the caller's thread and is a few ``deque.append`` calls (atomic in CPython),
so it needs no lock; everything else runs on the dispatcher thread. A message is queued for
all its destinations or for none. When a destination's queue is full (``max_size`` messages,
or ``max_bytes`` of serialised messages when set), the policy decides: ``drop_oldest``
(counted and reported with code OCDP301), ``block`` (wait up to a timeout for room in every
target queue, then QueueFullError with nothing queued) or ``spill`` (overflow into a durable
outbox, leased from once the memory queue is empty).

Every per-message structure (the queues, in-flight leases, late timestamps) lets go of a
message when it is acknowledged, dead-lettered or dropped; dead letters are kept up to
``max_dead`` per destination. The byte bound keeps no per-message record: a message's size
is computed again when it leaves, so only the totals are stored.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from .. import clock, reentry, registry
from ..errors import ConfigurationError, QueueFullError
from ..message import Message, dumps_message
from .base import DeadItem, DeadLetter, Leased, Outbox, QueueStats, RetryItem

__all__ = ["MemoryOutbox"]

DropHook = Callable[[str, str, Message], None]
"""Called as ``hook(code, destination, message)`` for every dropped message."""

_LATE = 1.0
"""Seconds between an event id's time and the put beyond which the put time is recorded
(a caller-supplied event id); otherwise the id's time is when the message entered."""


class _Lane:
    __slots__ = ("bytes", "dead", "delivered", "dropped", "fresh", "held", "inflight", "late",
                 "overflow", "retry", "spilled")

    def __init__(self) -> None:
        self.fresh: deque[Message] = deque()
        self.retry: list[tuple[float, int, Leased]] = []
        self.inflight: dict[int, Leased] = {}
        self.dead: list[DeadLetter] = []
        self.delivered = 0
        self.dropped: dict[str, int] = {}
        self.spilled: set[int] = set()  # leased from the spill
        self.overflow: set[int] = set()  # put into the spill and not finished here yet
        self.late: dict[int, float] = {}
        self.bytes = 0  # serialised size of the messages counted (max_bytes only)
        self.held = 0  # how many messages that is


class MemoryOutbox(Outbox):
    durable = False

    def __init__(
        self,
        max_size: int = 100_000,
        full_policy: str = "drop_oldest",
        full_timeout: float = 1.0,
        spill: Outbox | None = None,
        on_drop: DropHook | None = None,
        max_dead: int = 10_000,
        max_bytes: int | None = None,
        scratch: str | None = None,
    ) -> None:
        """``scratch``: a folder made for the spill alone, removed with it at ``close``."""
        if full_policy == "spill" and spill is None:
            raise ValueError("the spill policy needs a spill outbox")
        if max_bytes is not None and (
            not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0
        ):
            raise ConfigurationError(f"max_queue_bytes must be a positive int or None, "
                                     f"got {max_bytes!r}")
        self.max_size = max_size
        self.max_bytes = max_bytes
        self.full_policy = full_policy
        self.full_timeout = full_timeout
        self.max_dead = max_dead
        self._spill = spill
        self._scratch = scratch
        self._on_drop = on_drop
        self._new_lanes()
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._bytes_lock = threading.Lock()
        self._pid = os.getpid()

    def _new_lanes(self) -> None:
        self._lanes = {name: _Lane() for name in registry.names()}
        self._targets: dict[int, tuple[tuple[str, _Lane], ...]] = {}

    def _targets_of(self, bits: int) -> tuple[tuple[str, _Lane], ...]:
        """The lanes of a destination set, made once per set: a put reads one dict entry.
        A destination registered after the queue opened gets its lane here."""
        targets = self._targets.get(bits)
        if targets is None:
            for name in registry.names_in(bits):
                self._lanes.setdefault(name, _Lane())
            targets = tuple((n, self._lanes[n]) for n in registry.names_in(bits))
            self._targets[bits] = targets
        return targets

    # caller's thread -------------------------------------------------------------------
    def put(self, message: Message) -> None:
        targets = self._targets.get(message.destinations) or \
            self._targets_of(message.destinations)
        if self.max_bytes is not None:
            with reentry.region():
                self._put_sized(message, targets)
            return
        max_size = self.max_size
        for _, lane in targets:
            if len(lane.fresh) >= max_size:
                with reentry.region():
                    self._put_full(message, targets, 0)
                return
        if abs(time.time() - (message.id >> 80) / 1000) > _LATE:  # the id's own clock
            now = clock.wall()
            for _, lane in targets:
                lane.late[message.id] = now
        for _, lane in targets:
            lane.fresh.append(message)

    def _fits(self, lane: _Lane, size: int) -> bool:
        if len(lane.fresh) >= self.max_size:
            return False
        limit = self.max_bytes
        return limit is None or not lane.held or lane.bytes + size <= limit

    def _put_sized(self, message: Message, targets: tuple[tuple[str, _Lane], ...]) -> None:
        size = len(dumps_message(message))
        with self._bytes_lock:
            if all(self._fits(lane, size) for _, lane in targets):
                self._append(message, targets, size)
                return
        self._put_full(message, targets, size)

    def _append(self, message: Message, targets: tuple[tuple[str, _Lane], ...],
                size: int) -> None:
        late = abs(time.time() - (message.id >> 80) / 1000) > _LATE
        now = clock.wall() if late else 0.0
        for _, lane in targets:
            if late:
                lane.late[message.id] = now
            if size:
                lane.bytes += size
                lane.held += 1
            lane.fresh.append(message)

    def _put_full(self, message: Message, targets: tuple[tuple[str, _Lane], ...],
                  size: int) -> None:
        if self.full_policy == "spill" and self._spill is not None:
            full = [(n, lane) for n, lane in targets if not self._fits(lane, size)]
            bits = registry.bits(n for n, _ in full)
            self._spill.put(message._replace(destinations=bits))  # first: it may raise
            for _, lane in full:
                lane.overflow.add(message.id)
            with self._bytes_lock:
                self._append(message, tuple(t for t in targets if t not in full), size)
            return
        if self.full_policy == "block":
            deadline = clock.monotonic() + self.full_timeout
            delay = 0.0005
            while True:
                with self._bytes_lock:
                    if all(self._fits(lane, size) for _, lane in targets):
                        self._append(message, targets, size)
                        return
                if clock.monotonic() >= deadline:
                    for name, lane in targets:
                        if not self._fits(lane, size):
                            self._count_drop(name, "queue_full", message)
                    limit = f"{self.max_size} messages" + (
                        f" or {self.max_bytes} bytes" if self.max_bytes is not None else "")
                    raise QueueFullError(
                        f"the memory queue stayed full ({limit}) for {self.full_timeout} s; "
                        "the message was not queued"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
        dropped: list[tuple[str, Message]] = []
        with self._bytes_lock:
            for name, lane in targets:
                while not self._fits(lane, size):
                    try:
                        oldest = lane.fresh.popleft()
                    except IndexError:  # drained meanwhile, or only in-flight bytes left
                        break
                    lane.late.pop(oldest.id, None)
                    if size:
                        lane.bytes -= len(dumps_message(oldest))
                        lane.held -= 1
                    dropped.append((name, oldest))
            self._append(message, targets, size)
        for name, oldest in dropped:
            self._count_drop(name, "drop_oldest", oldest)

    def _release(self, lane: _Lane, messages: Sequence[Message]) -> None:
        """Take resolved messages out of the byte count."""
        if self.max_bytes is None or not messages:
            return
        freed = sum(len(dumps_message(m)) for m in messages)
        with self._bytes_lock:
            lane.bytes -= freed
            lane.held -= len(messages)

    def _count_drop(self, name: str, reason: str, message: Message) -> None:
        lane = self._lanes[name]
        with self._lock:
            lane.dropped[reason] = lane.dropped.get(reason, 0) + 1
        if self._on_drop is not None:
            self._on_drop("OCDP301", name, message)

    # dispatcher's thread -----------------------------------------------------------------
    def lease(self, destination: str, limit: int, now: float, lease_seconds: float) -> list[Leased]:
        lane = self._lanes[destination]
        out: list[Leased] = []
        heap = lane.retry
        while heap and heap[0][0] <= now and len(out) < limit:
            out.append(heapq.heappop(heap)[2])
        fresh = lane.fresh
        take = min(limit - len(out), len(fresh))
        popleft = fresh.popleft
        if lane.late:
            late = lane.late
            for _ in range(take):
                m = popleft()
                at = late.pop(m.id, None)
                out.append(Leased(m, 0, None, (m.id >> 80) / 1000 if at is None else at))
        else:
            out.extend([Leased(m, 0, None, (m.id >> 80) / 1000)
                        for m in [popleft() for _ in range(take)]])
        if len(out) < limit and self._spill is not None and not fresh:
            spilled = self._spill.lease(destination, limit - len(out), now, lease_seconds)
            lane.spilled.update(item.message.id for item in spilled)
            out.extend(spilled)
        inflight = lane.inflight
        for item in out:
            inflight[item.message.id] = item
        return out

    def _from_spill(self, lane: _Lane, ids: Sequence[int]) -> list[int]:
        if not lane.spilled:
            return []
        found = [i for i in ids if i in lane.spilled]
        lane.spilled.difference_update(found)
        return found

    def _finished_in_spill(self, lane: _Lane, ids: Sequence[int] | set[int]) -> None:
        lane.overflow.difference_update(ids)

    def ack(self, destination: str, ids: Sequence[int]) -> None:
        lane = self._lanes[destination]
        spilled = self._from_spill(lane, ids)
        if spilled and self._spill is not None:
            self._spill.ack(destination, spilled)
            self._finished_in_spill(lane, spilled)
        pop = lane.inflight.pop
        done = [leased for i in ids if (leased := pop(i, None)) is not None]
        if self.max_bytes is not None:
            self._release(lane, [x.message for x in done if x.message.id not in spilled])
        lane.delivered += len(done)
        self._shrink(lane)

    @staticmethod
    def _shrink(lane: _Lane) -> None:
        # A dict keeps its grown table when emptied by pops; a new one lets the memory go.
        # (Only the dispatcher's own: callers write ``late`` concurrently.)
        if not lane.inflight:
            lane.inflight = {}

    def retry(self, destination: str, items: Sequence[RetryItem]) -> None:
        lane = self._lanes[destination]
        spilled = set(self._from_spill(lane, [it.id for it in items]))
        if spilled and self._spill is not None:
            self._spill.retry(destination, [it for it in items if it.id in spilled])
        for it in items:
            leased = lane.inflight.pop(it.id, None)
            if leased is None or it.id in spilled:
                continue
            leased.attempt = leased.attempt + 1 if it.attempt is None else it.attempt
            leased.last_error = it.error
            heapq.heappush(lane.retry, (it.not_before, next(self._seq), leased))

    def dead(self, destination: str, items: Sequence[DeadItem], now: float) -> None:
        lane = self._lanes[destination]
        spilled = set(self._from_spill(lane, [it.id for it in items]))
        if spilled and self._spill is not None:
            self._spill.dead(destination, [it for it in items if it.id in spilled], now)
            self._finished_in_spill(lane, spilled)
        with self._lock:
            for it in items:
                leased = lane.inflight.pop(it.id, None)
                if leased is None or it.id in spilled:
                    continue
                self._release(lane, [leased.message])
                lane.dead.append(
                    DeadLetter(
                        message=leased.message,
                        destination=destination,
                        reason=it.reason,
                        status=it.status,
                        attempts=leased.attempt + 1,
                        dead_at=now,
                    )
                )
            self._shrink(lane)
            if len(lane.dead) > self.max_dead:
                overflow = len(lane.dead) - self.max_dead
                del lane.dead[:overflow]
                lane.dropped["dead_letter_overflow"] = (
                    lane.dropped.get("dead_letter_overflow", 0) + overflow
                )

    def next_due(self, destination: str, now: float) -> float | None:
        lane = self._lanes[destination]
        if lane.fresh:
            return now
        if self._spill is not None:
            spill_due = self._spill.next_due(destination, now)
            if spill_due is not None and (not lane.retry or spill_due < lane.retry[0][0]):
                return spill_due
        return lane.retry[0][0] if lane.retry else None

    def stats(self, now: float) -> dict[str, QueueStats]:
        out: dict[str, QueueStats] = {}
        spill_stats = self._spill.stats(now) if self._spill is not None else {}
        for name, lane in self._lanes.items():
            oldest: float | None = None
            try:
                oldest = max(0.0, now - lane.fresh[0].created_ms / 1000)
            except IndexError:
                pass
            if lane.retry:
                retry_age = max(0.0, now - min(
                    item.message.created_ms for _, _, item in lane.retry) / 1000)
                oldest = retry_age if oldest is None else max(oldest, retry_age)
            stats = QueueStats(
                pending=len(lane.fresh) + len(lane.retry),
                in_flight=len(lane.inflight),
                in_flight_here=len(lane.inflight),
                dead=len(lane.dead),
                delivered=lane.delivered,
                oldest_pending_age=oldest,
                dropped=dict(lane.dropped),
            )
            spilled = spill_stats.get(name)
            if spilled is not None:
                stats.pending += spilled.pending
                stats.dead += spilled.dead
                if spilled.oldest_pending_age is not None:
                    stats.oldest_pending_age = max(stats.oldest_pending_age or 0.0,
                                                   spilled.oldest_pending_age)
            out[name] = stats
        return out

    def dead_letters(
        self, destination: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        with self._lock:
            letters = [
                d
                for name, lane in self._lanes.items()
                if destination in (None, name)
                for d in lane.dead
                if since is None or d.dead_at >= since
            ]
        letters.sort(key=lambda d: d.dead_at, reverse=True)
        return letters[:limit]

    def _take_dead(self, destination: str | None, since: float | None,
                   before: float | None = None) -> list[DeadLetter]:
        taken: list[DeadLetter] = []
        with self._lock:
            for name, lane in self._lanes.items():
                if destination not in (None, name):
                    continue
                keep: list[DeadLetter] = []
                for letter in lane.dead:
                    inside = (since is None or letter.dead_at >= since) and (
                        before is None or letter.dead_at < before)
                    (taken if inside else keep).append(letter)
                lane.dead = keep
        return taken

    def replay(self, destination: str | None = None, since: float | None = None) -> int:
        taken = self._take_dead(destination, since)
        now = clock.wall()
        for letter in taken:
            lane = self._lanes[letter.destination]
            if self.max_bytes is not None:
                with self._bytes_lock:
                    lane.bytes += len(dumps_message(letter.message))
                    lane.held += 1
            heapq.heappush(lane.retry, (now, next(self._seq), Leased(letter.message, 0, None, now)))
        return len(taken)

    def purge(self, destination: str | None = None, since: float | None = None,
              before: float | None = None) -> int:
        return len(self._take_dead(destination, since, before))

    def pending_messages(self) -> int:
        """Distinct messages not yet finished on some lane, the scratch spill's included: what
        ``close`` reports as lost."""
        ids: set[int] = set()
        for lane in self._lanes.values():
            ids.update(m.id for m in list(lane.fresh))
            ids.update(item.message.id for _, _, item in list(lane.retry))
            ids.update(list(lane.inflight))
            if self._scratch is not None:
                ids.update(list(lane.overflow))
        return len(ids)

    def after_fork(self) -> None:
        """In a forked child: the queued messages are the parent's to deliver."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._new_lanes()
        self._lock = threading.Lock()
        self._bytes_lock = threading.Lock()
        if self._spill is not None:
            self._spill.after_fork()

    def maintain(self, now: float) -> None:
        if self._spill is not None:
            self._spill.maintain(now)

    def queued_bytes(self) -> dict[str, int]:
        """Serialised bytes held per destination (0 unless ``max_bytes`` is set)."""
        return {name: lane.bytes for name, lane in self._lanes.items()}

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
        if self._scratch is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._scratch)
