"""The background engine: one thread, one asyncio loop, one lane per destination.

Each lane repeats: wait until the breaker and the token bucket allow a request, lease what is
due from the outbox, run the deep guard checks, encode, send, classify, then ack, reschedule
or dead-letter. Policies are applied in one fixed order, here and nowhere else:
breaker -> rate limit -> lease -> guards -> encode -> transport -> classify -> retry budget.

Destinations are independent: a lane only ever waits on its own breaker, bucket and
requests, so a Customer.io outage never slows OpenCDP delivery. Nothing here raises into the
host application: every exception inside a lane is logged with code OCDP306 and the lane goes
on. Waits are bounded; the thread is a daemon and is restarted lazily after ``fork``.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .config import ClientConfig
from .destinations import customerio as cio
from .destinations import opencdp as gateway
from .destinations.base import Dead, Delivered, Failure, Outcome, Request, Response, Retry, Split
from .errors import OpenCDPError, ValidationError
from .guards import explain_unauthorized
from .logs import Log
from .message import DESTINATION_NAMES, Message
from .outbox.base import DeadItem, Leased, Outbox, RetryItem
from .policies.breaker import CircuitBreaker, State
from .policies.ratelimit import SharedTokenBucket, TokenBucket
from .policies.retry import exhausted, retry_at
from .transport import Transport

__all__ = ["Dispatcher", "Outcomes"]

T = TypeVar("T")
Inspect = Callable[[Message], Message]
Outcomes = dict[str, tuple[bool, str | None, int | None]]
"""Per destination: (delivered, reason, status) once the message is finished there."""

_IDLE_WAIT = 1.0
_POLL = 0.005
_HOT_SECONDS = 2.0
_RECENT_RESPONSES = 10
_PAUSE_AFTER_429S = 5
_INSPECTED_MAX = 200_000
_engines: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (``opencdp[speed]``): it roughly halves the engine's
    per-request cost; the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _after_fork_in_child() -> None:
    for engine in list(_engines):
        engine.on_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass
class LaneCounters:
    """Plain counters, read at scrape or health time (nothing is pushed anywhere).

    ``by_kind[outcome][kind]`` counts messages per outcome (``dispatched`` when first
    leased, ``delivered``, ``retried``, ``dead``); ``latency`` counts requests per bucket of
    ``LATENCY_BUCKETS`` (not cumulative; the last slot is above the largest bound).
    """

    requests: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    failures: int = 0
    latency_total: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    by_kind: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: {} for k in ("dispatched", "delivered", "retried", "dead")}
    )
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    def count(self, outcome: str, items: list[Leased]) -> None:
        table = self.by_kind[outcome]
        for item in items:
            kind = item.message.kind
            table[kind] = table.get(kind, 0) + 1

    def observe(self, seconds: float) -> None:
        self.requests += 1
        self.latency_total += seconds
        self.latency[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1


LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
ExchangeHook = Callable[[str, Request, "Response | Failure", int, int], None]
"""Called as ``hook(lane, request, result, start_ns, end_ns)`` after every exchange (metrics,
tracing). Wall-clock nanoseconds. A hook that raises is logged and ignored."""


class _Waiter:
    __slots__ = ("future", "remaining", "results")

    def __init__(self, destinations: set[str]) -> None:
        self.remaining = destinations
        self.results: Outcomes = {}
        self.future: concurrent.futures.Future[Outcomes] = concurrent.futures.Future()


class Lane:
    """One destination's delivery loop."""

    def __init__(self, engine: Dispatcher, name: str) -> None:
        self.engine = engine
        self.name = name
        config = engine.config
        self.prefix = "[CDP]" if name == "opencdp" else "[Customer.io]"
        self.breaker = CircuitBreaker(config.breaker, on_change=self._breaker_changed)
        rate = config.rate_limits.opencdp if name == "opencdp" else config.rate_limits.customerio
        shared = getattr(engine.outbox, "shared_state", None)
        if callable(shared) and rate is not None:
            redis_client, prefix = shared()
            self.bucket: TokenBucket = SharedTokenBucket(redis_client, f"{prefix}rate:{name}",
                                                         rate)
        else:
            self.bucket = TokenBucket(rate)
        self.max_inflight = config.max_concurrent_requests
        self.lease_size = 1 if name == "opencdp" else config.batch_size
        self.counters = LaneCounters()
        self.recent_429: deque[bool] = deque(maxlen=_RECENT_RESPONSES)
        self.inflight = 0
        self.idle = False
        self.last_work = 0.0
        self._wake_pending = False
        self.wake = asyncio.Event()
        self.slot = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # wake-ups ---------------------------------------------------------------------------
    def wake_up(self) -> None:
        self._wake_pending = False
        self.wake.set()

    def notify_threadsafe(self, loop: asyncio.AbstractEventLoop, force: bool = False) -> None:
        if (self.idle or force) and not self._wake_pending:
            self._wake_pending = True
            try:
                loop.call_soon_threadsafe(self.wake_up)
            except RuntimeError:  # loop closed during shutdown
                self._wake_pending = False

    async def _sleep(self, seconds: float) -> None:
        # A timer that sets the event, not asyncio.wait_for: on Python < 3.12 wait_for can
        # swallow a cancellation that races with the event, and close() would hang.
        if self.wake.is_set():
            self.wake.clear()
            return
        timer = asyncio.get_running_loop().call_later(
            max(0.0, min(seconds, _IDLE_WAIT)), self.wake.set
        )
        try:
            await self.wake.wait()
        finally:
            timer.cancel()
            self.wake.clear()

    # the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        engine = self.engine
        outbox = engine.outbox
        while True:
            try:
                wait = self.breaker.wait_time()
                if wait > 0:
                    await self._sleep(wait)
                    continue
                if self.inflight >= self.max_inflight:
                    self.slot.clear()
                    await self.slot.wait()
                    continue
                now = time.time()
                due = outbox.next_due(self.name, now)
                if due is None or due > now:
                    if self.breaker.state == "HALF_OPEN" and not self.inflight:
                        # Nothing to deliver: probe, so health recovers without traffic.
                        self._start(self._probe())
                        continue
                    if now - self.last_work < _HOT_SECONDS:
                        # Recently busy: poll, so callers never pay for a wake-up (a
                        # cross-thread wake is a syscall that hands this thread the GIL).
                        await self._sleep(_POLL if due is None else min(due - now, _POLL))
                        continue
                    self.idle = True
                    due = outbox.next_due(self.name, time.time())
                    if due is None or due > now:
                        await self._sleep(_IDLE_WAIT if due is None else due - now)
                    self.idle = False
                    continue
                self.last_work = now
                wait = self.bucket.take()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                limit = self.lease_size if self.name == "customerio" else (
                    self.max_inflight - self.inflight
                )
                items = outbox.lease(self.name, limit, time.time(), engine.lease_seconds)
                if not items:
                    continue
                self.counters.count("dispatched", [i for i in items if i.attempt == 0])
                await self._deliver(engine.inspect(self.name, items))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                engine.log.error_once(
                    f"lane:{self.name}:{type(exc).__name__}",
                    f"{self.prefix} OCDP306 error in the delivery lane (logged once per kind; "
                    f"the lane keeps trying): {type(exc).__name__}: {exc}",
                )
                await asyncio.sleep(0.5)

    async def _deliver(self, items: list[Leased]) -> None:
        if not items:
            return
        if self.name == "opencdp":
            requests = [gateway.encode(item) for item in items]
            refused: list[Dead] = []
        else:
            requests, refused = cio.encode(items)
        for dead in refused:
            self.apply(dead)
        for index, request in enumerate(requests):
            if index:
                wait = self.bucket.take()
                while wait > 0:
                    await asyncio.sleep(wait)
                    wait = self.bucket.take()
            self._start(request)

    def _probe(self) -> Request:
        if self.name == "opencdp":
            return Request("gateway", "GET", gateway.PING_PATH, None, [])
        return Request("track", "GET", "/api/v1/accounts/region", None, [])

    def _start(self, request: Request) -> None:
        self.breaker.before_request()
        self.inflight += 1
        task = asyncio.get_running_loop().create_task(self._exchange(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _exchange(self, request: Request) -> None:
        started = time.perf_counter()
        start_ns = time.time_ns()
        probing = self.breaker.state != "CLOSED"
        try:
            result = await self.engine.transport.send(request)
        except Exception as exc:
            result = Failure(f"{type(exc).__name__}: {exc}", maybe_received=True)
        finally:
            self.inflight -= 1
            self.slot.set()
        counters = self.counters
        counters.observe(time.perf_counter() - started)
        for hook in self.engine.exchange_hooks:
            try:
                hook(self.name, request, result, start_ns, time.time_ns())
            except Exception as exc:
                self.engine.log.error(f"{self.prefix} OCDP306 exchange hook failed: {exc!r}")
        now = time.time()
        try:
            if isinstance(result, Response):
                counters.statuses[result.status] = counters.statuses.get(result.status, 0) + 1
                self._breaker_record(result)
            else:
                counters.failures += 1
                self.breaker.record_failure(result.reason)
            classify = gateway.classify if self.name == "opencdp" else cio.classify
            for outcome in classify(request, result, now):
                if isinstance(outcome, Split):
                    for half in (outcome.items[: len(outcome.items) // 2],
                                 outcome.items[len(outcome.items) // 2:]):
                        await self._deliver(half)
                else:
                    self.apply(outcome, probing)
        except Exception as exc:
            self.engine.log.error(f"{self.prefix} OCDP306 internal error handling a response: "
                                  f"{type(exc).__name__}: {exc}")
            self.apply(Retry(request.items, f"internal error: {type(exc).__name__}"))
        finally:
            self.wake.set()  # a retry may be due sooner than the lane's idle wait

    def _breaker_record(self, result: Response) -> None:
        status = result.status
        self.recent_429.append(status == 429)
        if status == 429:
            self.breaker.record_success()  # the service is up; the bucket handles the pace
        elif status >= 500 or status == 408:
            self.breaker.record_failure(f"HTTP {status}")
        elif status in (401, 403):
            self.breaker.record_failure(f"HTTP {status}: credentials refused")
            self.engine.explain_unauthorized(self.name, status)
        else:
            self.breaker.record_success()

    # outcomes ---------------------------------------------------------------------------
    def apply(self, outcome: Outcome, probing: bool = False) -> None:
        engine = self.engine
        outbox = engine.outbox
        name = self.name
        items = outcome.items
        if not items:
            return
        if isinstance(outcome, Delivered):
            outbox.ack(name, [item.message.id for item in items])
            self.counters.delivered += len(items)
            self.counters.count("delivered", items)
            if engine.log.enabled_debug:
                describe = gateway.describe if name == "opencdp" else cio.describe
                for item in items:
                    engine.log.debug(f"{self.prefix} {describe(item.message)}")
            engine.finished(name, items, True, None, None)
            return
        if isinstance(outcome, Retry):
            now = time.time()
            if outcome.status == 429:
                # 429s keep the retry budget: the message is not at fault. A sporadic 429
                # delays only its own messages (by Retry-After); when 429s cluster the
                # destination is saturated and the whole lane pauses.
                probing = True
                if outcome.after and sum(self.recent_429) >= _PAUSE_AFTER_429S:
                    self.bucket.pause(outcome.after)
            again: list[RetryItem] = []
            retried: list[Leased] = []
            expired: list[Leased] = []
            config = engine.config.retry
            for item in items:
                attempt = item.attempt if probing else item.attempt + 1
                if exhausted(attempt, item.message.created_ms / 1000, now, config):
                    expired.append(item)
                else:
                    retried.append(item)
                    again.append(RetryItem(item.message.id,
                                           retry_at(max(attempt, 1), now, config, outcome.after),
                                           outcome.reason, attempt))
            if again:
                outbox.retry(name, again)
                self.counters.retried += len(again)
                self.counters.count("retried", retried)
            if expired:
                self.apply(Dead(expired, f"retry budget exhausted; last error: {outcome.reason}",
                                outcome.status))
            return
        if isinstance(outcome, Dead):
            now = time.time()
            outbox.dead(name, [DeadItem(i.message.id, outcome.reason, outcome.status)
                               for i in items], now)
            self.counters.dead += len(items)
            self.counters.count("dead", items)
            engine.log.warning_once(
                f"dead:{name}:{outcome.status}:{outcome.reason[:60]}",
                f"{self.prefix} OCDP303 dead-lettered {len(items)} message(s): {outcome.reason} "
                "(further dead letters with this reason are counted, not logged; "
                "see `opencdp queue list`)",
            )
            engine.finished(name, items, False, outcome.reason, outcome.status)

    def _breaker_changed(self, old: State, new: State, breaker: CircuitBreaker) -> None:
        if new == "OPEN" and old == "HALF_OPEN":
            self.engine.log.debug(f"{self.prefix} circuit probe failed; OPEN again")
        elif new == "OPEN":
            self.engine.log.warning(
                f"{self.prefix} OCDP304 circuit OPEN after {breaker.failure_count} consecutive "
                f"failures (last: {breaker.last_failure_reason}); messages wait in the outbox, "
                f"next probe in {breaker.config.reset_timeout:g} s"
            )
        elif new == "CLOSED":
            self.engine.log.warning(f"{self.prefix} OCDP304 circuit CLOSED (recovered)")

    async def drain_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class Dispatcher:
    """Owns the thread, the loop, the transport and the lanes."""

    def __init__(
        self,
        config: ClientConfig,
        outbox: Outbox,
        log: Log,
        inspect: Inspect | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.log = log
        self._inspect = inspect
        self.lease_seconds = max(1.0, config.timeout * 3)
        self.destinations = ["opencdp"] + (["customerio"] if config.customer_io else [])
        self.exchange_hooks: list[ExchangeHook] = []
        self._waiters: dict[int, _Waiter] = {}
        self._waiters_lock = threading.Lock()
        self._inspected: dict[int, Message | ValidationError] = {}
        self._explained: set[tuple[str, int]] = set()
        self._forked = False
        self._started = False
        self._closed = False
        self._start_lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lanes: dict[str, Lane] = {}
        self._lane_list: tuple[Lane, ...] = ()
        self.transport: Transport
        self._thread: threading.Thread | None = None
        _engines.add(self)

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            ready = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(ready,), name="opencdp-dispatcher", daemon=True
            )
            self._thread.start()
            ready.wait(10)
            self._started = True

    def _run(self, ready: threading.Event) -> None:
        loop = _new_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        self.transport = self.config.transport or Transport(self.config, debug=self.log.debug)
        self.lanes = {name: Lane(self, name) for name in self.destinations}
        self._lane_list = tuple(self.lanes.values())
        tasks = [loop.create_task(lane.run()) for lane in self._lane_list]
        ready.set()
        try:
            loop.run_forever()
        finally:
            for lane in self._lane_list:
                tasks.extend(lane._tasks)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(self.transport.aclose())
            loop.close()

    def on_fork(self) -> None:
        """In a forked child, right after ``fork``: the parent's thread is gone and its
        in-memory messages are the parent's to deliver; start afresh on next use."""
        self._forked = True
        self._start_lock = threading.Lock()
        self._waiters_lock = threading.Lock()
        self._waiters.clear()
        self._inspected.clear()
        self.loop = None
        self._lane_list = ()
        reopen = getattr(self.outbox, "after_fork", None)
        if callable(reopen):
            reopen()

    def _restart_after_fork(self) -> None:
        self._forked = False
        self._started = False
        self.start()

    def notify(self, force: bool = False) -> None:
        """Called after every put: wakes lanes in deep sleep (free while they are busy or
        polling). ``force`` wakes them anyway, for a caller that is about to wait."""
        if self._forked:
            self._restart_after_fork()
        loop = self.loop
        if loop is None:
            return
        for lane in self._lane_list:
            lane.notify_threadsafe(loop, force)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the engine's loop from another thread and wait for it."""
        return self.submit(coro).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._forked:
            self._restart_after_fork()
        self.start()
        if self.loop is None:
            raise RuntimeError("the dispatcher did not start")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    # guards on the dispatcher ------------------------------------------------------------
    def inspect(self, lane: str, items: list[Leased]) -> list[Leased]:
        """Deep per-value checks, once per message even when two lanes carry it."""
        check = self._inspect
        if check is None:
            return items
        keep: list[Leased] = []
        for item in items:
            message = item.message
            result = self._inspected.pop(message.id, None)
            if result is None:
                try:
                    result = check(message)
                except ValidationError as exc:
                    result = exc
                if bin(message.destinations).count("1") > 1 and len(
                    self._inspected
                ) < _INSPECTED_MAX:
                    self._inspected[message.id] = result
            if isinstance(result, ValidationError):
                self.lanes[lane].apply(Dead([item], f"{result.code or 'OCDP150'}: {result}"))
                continue
            if result is not message:
                item.message = result
            keep.append(item)
        return keep

    def explain_unauthorized(self, lane: str, status: int) -> None:
        if (lane, status) in self._explained:
            return
        self._explained.add((lane, status))
        if lane == "customerio":
            self.log.error(f"[Customer.io] OCDP305 {explain_unauthorized('track')} Messages are "
                           "dead-lettered; replay them with `opencdp queue replay` once the "
                           "keys are fixed.")
        else:
            self.log.error(f"[CDP] OCDP305 HTTP {status}: the OpenCDP gateway refused the API "
                           "key (cdp_api_key). Messages are dead-lettered; replay them once "
                           "the key is fixed.")

    # waiting ------------------------------------------------------------------------------
    def expect(self, message: Message) -> concurrent.futures.Future[Outcomes]:
        """Register interest in a message's outcomes; call before ``outbox.put``."""
        waiter = _Waiter(
            {name for bit, name in DESTINATION_NAMES.items() if message.destinations & bit}
        )
        with self._waiters_lock:
            self._waiters[message.id] = waiter
        return waiter.future

    def forget(self, message: Message) -> None:
        """Drop interest in a message that never made it into the outbox."""
        with self._waiters_lock:
            self._waiters.pop(message.id, None)

    def finished(
        self, lane: str, items: list[Leased], ok: bool, reason: str | None, status: int | None
    ) -> None:
        if not self._waiters:
            return
        with self._waiters_lock:
            for item in items:
                waiter = self._waiters.get(item.message.id)
                if waiter is None:
                    continue
                waiter.results[lane] = (ok, reason, status)
                waiter.remaining.discard(lane)
                if not waiter.remaining:
                    del self._waiters[item.message.id]
                    waiter.future.set_result(waiter.results)

    def settled(self) -> bool:
        stats = self.outbox.stats(time.time())
        for name in self.destinations:
            lane_stats = stats.get(name)
            if lane_stats is not None and (lane_stats.pending or lane_stats.in_flight):
                return False
            lane = self.lanes.get(name)
            if lane is not None and lane.inflight:
                return False
        return True

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        self.notify(force=True)
        delay = 0.001
        while True:
            try:
                if self.settled():
                    return True
            except OpenCDPError as exc:
                self.log.error(f"[CDP] OCDP307 cannot read the outbox: {exc}")
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)

    def stop(self, timeout: float) -> None:
        """Stop the loop (cancelling what is still in flight) and join the thread."""
        self._closed = True
        loop = self.loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(max(0.1, timeout))
