"""The default outbox: bounded, in-process, fast.

``put`` runs on the caller's thread and is two ``deque.append`` calls (atomic in CPython), so
it needs no lock; everything else runs on the dispatcher thread. When a destination's queue is
full, the policy decides: ``drop_oldest`` (counted and reported with code OCDP301),
``block`` (wait up to a timeout, then QueueFullError) or ``spill`` (overflow into a durable
outbox, leased from once the memory queue is empty).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from ..errors import QueueFullError
from ..message import DESTINATION_BITS, DESTINATION_NAMES, Message
from .base import DeadItem, DeadLetter, Leased, Outbox, QueueStats, RetryItem

__all__ = ["MemoryOutbox"]

DropHook = Callable[[str, str, Message], None]
"""Called as ``hook(code, destination, message)`` for every dropped message."""


class _Lane:
    __slots__ = ("dead", "delivered", "dropped", "fresh", "inflight", "retry", "spilled")

    def __init__(self) -> None:
        self.fresh: deque[Message] = deque()
        self.retry: list[tuple[float, int, Leased]] = []
        self.inflight: dict[int, Leased] = {}
        self.dead: list[DeadLetter] = []
        self.delivered = 0
        self.dropped: dict[str, int] = {}
        self.spilled: set[int] = set()


class MemoryOutbox:
    durable = False

    def __init__(
        self,
        max_size: int = 100_000,
        full_policy: str = "drop_oldest",
        full_timeout: float = 1.0,
        spill: Outbox | None = None,
        on_drop: DropHook | None = None,
        max_dead: int = 10_000,
    ) -> None:
        if full_policy == "spill" and spill is None:
            raise ValueError("the spill policy needs a spill outbox")
        self.max_size = max_size
        self.full_policy = full_policy
        self.full_timeout = full_timeout
        self.max_dead = max_dead
        self._spill = spill
        self._on_drop = on_drop
        self._lanes = {name: _Lane() for name in DESTINATION_BITS}
        self._targets: dict[int, tuple[tuple[str, deque[Message]], ...]] = {
            bits: tuple(
                (name, self._lanes[name].fresh)
                for bit, name in DESTINATION_NAMES.items()
                if bits & bit
            )
            for bits in range(4)
        }
        self._seq = itertools.count()
        self._lock = threading.Lock()

    # caller's thread -------------------------------------------------------------------
    def put(self, message: Message) -> None:
        for name, queue in self._targets[message.destinations]:
            if len(queue) < self.max_size:
                queue.append(message)
            else:
                self._full(name, queue, message)

    def _full(self, name: str, queue: deque[Message], message: Message) -> None:
        if self.full_policy == "spill" and self._spill is not None:
            self._spill.put(message._replace(destinations=DESTINATION_BITS[name]))
            return
        if self.full_policy == "block":
            deadline = time.monotonic() + self.full_timeout
            delay = 0.0005
            while len(queue) >= self.max_size:
                if time.monotonic() >= deadline:
                    self._count_drop(name, "queue_full", message)
                    raise QueueFullError(
                        f"the {name} queue stayed full ({self.max_size} messages) "
                        f"for {self.full_timeout} s"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
            queue.append(message)
            return
        try:
            oldest = queue.popleft()
        except IndexError:  # drained meanwhile
            oldest = None
        queue.append(message)
        if oldest is not None:
            self._count_drop(name, "drop_oldest", oldest)

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
        out.extend([Leased(popleft()) for _ in range(take)])
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

    def ack(self, destination: str, ids: Sequence[int]) -> None:
        lane = self._lanes[destination]
        spilled = self._from_spill(lane, ids)
        if spilled and self._spill is not None:
            self._spill.ack(destination, spilled)
        pop = lane.inflight.pop
        for i in ids:
            pop(i, None)
        lane.delivered += len(ids)

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
        with self._lock:
            for it in items:
                leased = lane.inflight.pop(it.id, None)
                if leased is None or it.id in spilled:
                    continue
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
                oldest = now - lane.fresh[0].created_ms / 1000
            except IndexError:
                pass
            if lane.retry:
                retry_age = now - min(item.message.created_ms for _, _, item in lane.retry) / 1000
                oldest = retry_age if oldest is None else max(oldest, retry_age)
            stats = QueueStats(
                pending=len(lane.fresh) + len(lane.retry),
                in_flight=len(lane.inflight),
                dead=len(lane.dead),
                delivered=lane.delivered,
                oldest_pending_age=oldest,
                dropped=dict(lane.dropped),
            )
            spilled = spill_stats.get(name)
            if spilled is not None:
                stats.pending += spilled.pending
                stats.dead += spilled.dead
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

    def _take_dead(self, destination: str | None, since: float | None) -> list[DeadLetter]:
        taken: list[DeadLetter] = []
        with self._lock:
            for name, lane in self._lanes.items():
                if destination not in (None, name):
                    continue
                keep = [d for d in lane.dead if since is not None and d.dead_at < since]
                taken.extend(d for d in lane.dead if since is None or d.dead_at >= since)
                lane.dead = keep
        return taken

    def replay(self, destination: str | None = None, since: float | None = None) -> int:
        taken = self._take_dead(destination, since)
        for letter in taken:
            self._lanes[letter.destination].fresh.append(letter.message)
        return len(taken)

    def purge(self, destination: str | None = None, since: float | None = None) -> int:
        return len(self._take_dead(destination, since))

    def pending_messages(self) -> int:
        """Messages not yet finished on some lane (what ``close`` reports as lost)."""
        return sum(
            len(lane.fresh) + len(lane.retry) + len(lane.inflight) for lane in self._lanes.values()
        )

    def after_fork(self) -> None:
        """In a forked child: the queued messages are the parent's to deliver."""
        for lane in self._lanes.values():
            lane.fresh.clear()
            lane.retry.clear()
            lane.inflight.clear()
            lane.spilled.clear()
        self._lock = threading.Lock()
        if self._spill is not None:
            reopen = getattr(self._spill, "after_fork", None)
            if callable(reopen):
                reopen()

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
