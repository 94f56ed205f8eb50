"""The background engine: one thread, one asyncio loop, one ``Lane`` per destination.

The engine owns the thread and the loop, supervises the lanes (a lane or the thread that
dies is restarted, logged with OCDP310 and counted), keeps the outbox maintained (spill
drain, lease reclaim) and tells waiting callers when their messages are finished. Other
modules read it through ``snapshot()`` only.

Fork safety: the thread is a daemon and is restarted lazily in a forked child (never when
``start_worker=False``); nothing the child inherits from the parent's thread (loop, locks,
connections, half-done imports) is used there, and the modules the thread imports lazily are
imported before it starts, so a fork never catches one of them half-initialised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import os
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from . import clock, reentry, registry
from .config import ClientConfig
from .destinations.base import Destination
from .errors import OpenCDPError
from .holding import Hold
from .lane import Lane
from .logs import Log
from .loops import new_loop, preimport
from .message import Message
from .outbox.base import Leased, Outbox
from .snapshot import LATENCY_BUCKETS, EngineSnapshot, LaneCounters, LaneSnapshot
from .threads import DaemonExecutor
from .transport import AiohttpTransport
from .wire import Failure, Request, Response, Transport

__all__ = ["LATENCY_BUCKETS", "Dispatcher", "Outcomes"]

T = TypeVar("T")
Outcomes = dict[str, tuple[bool, str | None, int | None]]
"""Per destination: (delivered, reason, status) once the message is finished there."""
ExchangeHook = Callable[[str, Request, "Response | Failure", int, int], None]
"""Called as ``hook(lane, request, result, start_ns, end_ns)`` after every exchange (metrics,
tracing). Wall-clock nanoseconds. A hook that raises is logged and ignored."""

_MAINTAIN_EVERY = 1.0
_CHECK_THREAD_EVERY = 1024
_LOG_INTERVAL = 60.0
_engines: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


def _keep_forever(obj: object) -> None:
    """Never finalise ``obj`` in this process: what a forked child inherited from its
    parent's engine (session, loop, lanes) belongs to a thread that does not exist here.
    Finalising it warns ("Unclosed client session") or, for a uvloop loop, aborts the child
    at exit. A reference that is never released costs a few kilobytes per fork."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def _after_fork_in_child() -> None:
    for engine in list(_engines):
        engine.on_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Waiter:
    __slots__ = ("future", "remaining", "results")

    def __init__(self, destinations: set[str]) -> None:
        self.remaining = destinations
        self.results: Outcomes = {}
        self.future: concurrent.futures.Future[Outcomes] = concurrent.futures.Future()


class Dispatcher:
    """Owns the thread, the loop, the transport and the lanes."""

    def __init__(self, config: ClientConfig, outbox: Outbox, log: Log,
                 destinations: Sequence[Destination],
                 scrub: Callable[[str], str] = lambda text: text,
                 on_error: Callable[[Message, str, str], Any] | None = None,
                 holds: dict[str, Hold] | None = None) -> None:
        self.config = config
        self.outbox = outbox
        self.log = log
        self.scrub = scrub
        self.lease_seconds = max(1.0, config.timeout * 3)
        self._destinations = {d.name: d for d in destinations}
        self.destinations = list(self._destinations)
        self.holds: dict[str, Hold] = dict(holds or {})
        """Destinations in hold mode, by name: their lanes send nothing while ``holding``,
        and nobody waits for them (flush, close, blocking calls)."""
        self._exchange_hooks: tuple[ExchangeHook, ...] = ()
        self._on_error = on_error
        self._callbacks = DaemonExecutor(1, "opencdp-on-error")
        self._pending_callbacks: set[concurrent.futures.Future[None]] = set()
        self._housekeeping = DaemonExecutor(1, "opencdp-maintain")
        self._lookups = DaemonExecutor(4, "opencdp-lookup")
        self._probe = DaemonExecutor(1, "opencdp-flush")
        self.housework: Callable[[], None] | None = None
        """Run after each ``outbox.maintain`` on the housekeeping thread (the engine moves
        calls made from signal handlers into the outbox there)."""
        self.restarts = 0
        self.internal_errors: dict[str, int] = {}
        self.transport: Transport = config.transport or AiohttpTransport(config, self._lookups)
        self._waiters: dict[int, _Waiter] = {}
        self._waiters_lock = threading.Lock()
        self._forked = False
        self._started = False
        self._closed = False
        self._calls = 0
        self._start_lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lanes: dict[str, Lane] = {}
        self._lane_list: tuple[Lane, ...] = ()
        self._thread: threading.Thread | None = None
        _engines.add(self)

    @property
    def started(self) -> bool:
        return self._started

    # errors -------------------------------------------------------------------------------
    def count_error(self, code: str) -> None:
        self.internal_errors[code] = self.internal_errors.get(code, 0) + 1

    def internal_error(self, code: str, cause: str, text: str) -> None:
        """Count every occurrence; log once per cause per minute."""
        self.count_error(code)
        self.log.error_once(cause, self.scrub(text), interval=_LOG_INTERVAL)

    @property
    def exchange_hooks(self) -> tuple[ExchangeHook, ...]:
        return self._exchange_hooks

    def add_exchange_hook(self, hook: ExchangeHook) -> None:
        """Call ``hook(lane, request, result, start_ns, end_ns)`` after every exchange, on the
        engine's loop (tracing). A tuple replaced whole, so the loop never iterates a list
        that another thread is changing."""
        self._exchange_hooks = (*self._exchange_hooks, hook)

    def remove_exchange_hook(self, hook: ExchangeHook) -> None:
        """Stop calling ``hook``; removing one that is not there does nothing."""
        self._exchange_hooks = tuple(h for h in self._exchange_hooks if h is not hook)

    def exchanged(self, lane: str, request: Request, result: Response | Failure,
                  start_ns: int) -> None:
        for hook in self._exchange_hooks:
            try:
                hook(lane, request, result, start_ns, time.time_ns())
            except Exception as exc:
                self.internal_error("OCDP306", f"hook:{type(exc).__name__}",
                                    f"[CDP] OCDP306 exchange hook failed: {exc!r}")

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        with reentry.region(), self._start_lock:
            if self._started and self._thread is not None and self._thread.is_alive():
                return
            if self._started:
                self.restarts += 1
                self.log.error("[CDP] OCDP310 the delivery thread had stopped; restarted")
            preimport()
            for pool in (self._housekeeping, self._probe):
                pool.prestart()
            ready = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(ready,), name="opencdp-dispatcher", daemon=True
            )
            self._thread.start()
            ready.wait(10)
            self._started = True

    def _run(self, ready: threading.Event) -> None:
        loop = new_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        rates = self.config.rate_limits
        self._lanes = {
            name: Lane(self, dest, rates.get(name))
            for name, dest in self._destinations.items()
        }
        self._lane_list = tuple(self._lanes.values())
        tasks = [loop.create_task(self._supervise(lane)) for lane in self._lane_list]
        tasks.append(loop.create_task(self._maintain()))
        ready.set()
        try:
            loop.run_forever()
        finally:
            for lane in self._lane_list:
                tasks.extend(lane._tasks)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            try:
                loop.run_until_complete(self.transport.aclose())
            except Exception as exc:
                self.log.error(f"[CDP] OCDP306 closing the transport failed: {exc!r}")
            for lane in self._lane_list:
                lane.shutdown()
            loop.close()

    async def _supervise(self, lane: Lane) -> None:
        while True:
            try:
                await lane.run()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self.restarts += 1
                self.internal_error("OCDP310", f"lane:{lane.name}",
                                    f"{lane.prefix} OCDP310 the delivery lane stopped "
                                    f"({type(exc).__name__}: {exc}); restarted")
                await asyncio.sleep(0.5)

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_MAINTAIN_EVERY)
            try:
                await loop.run_in_executor(self._housekeeping, self._housework)
            except Exception as exc:
                self.internal_error("OCDP307", f"maintain:{type(exc).__name__}",
                                    f"[CDP] OCDP307 outbox maintenance failed: "
                                    f"{type(exc).__name__}: {exc}")
            for lane in self._lane_list:
                lane.wake.set()

    def _housework(self) -> None:
        self.outbox.maintain(clock.wall())
        for name, hold in self.holds.items():
            try:
                hold.maintain(self.outbox, clock.wall())
            except OpenCDPError as exc:
                self.internal_error("OCDP369", f"hold:{name}:{type(exc).__name__}",
                                    f"[CDP] OCDP369 the hold of {name} could not be read or "
                                    f"purged (its copies stay held; tried again in a second): "
                                    f"{type(exc).__name__}: {exc}")
        if self.housework is not None:
            self.housework()

    def holding(self, name: str) -> bool:
        hold = self.holds.get(name)
        return hold is not None and hold.holding

    def on_fork(self) -> None:
        """In a forked child, right after ``fork``: the parent's thread is gone and its
        in-memory messages are the parent's to deliver; start afresh on next use."""
        self._forked = True
        self._start_lock = threading.Lock()
        self._waiters_lock = threading.Lock()
        self._waiters.clear()
        self._pending_callbacks = set()
        self.log.after_fork()
        _keep_forever((self.transport, self.loop, self._lanes))
        self.loop = None
        self._thread = None
        self._lane_list = ()
        self._lanes = {}
        if self.config.transport is None:
            self.transport = AiohttpTransport(self.config, self._lookups)
        self.outbox.after_fork()

    def _restart_after_fork(self) -> None:
        self._forked = False
        self._started = False
        if self.config.start_worker:
            self.start()

    def notify(self, force: bool = False) -> None:
        """Called after every put: wakes lanes in deep sleep (free while they are busy or
        polling). ``force`` wakes them anyway, for a caller that is about to wait."""
        if self._forked:
            self._restart_after_fork()
        self._calls += 1
        if (force or not self._calls % _CHECK_THREAD_EVERY) and self._started and \
                not self._closed and (self._thread is None or not self._thread.is_alive()):
            self.start()
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
            coro.close()
            raise RuntimeError("the dispatcher did not start")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def exchange(self, destination: str, request: Request) -> Response | Failure:
        """One request outside the queue (sends, pings), with the destination's failover."""
        lane = self._lanes[destination]
        result = await lane.send(request)
        self.exchanged(destination, request, result, time.time_ns())
        return result

    # waiting ------------------------------------------------------------------------------
    def expect(self, message: Message) -> concurrent.futures.Future[Outcomes]:
        """Register interest in a message's outcomes; call before ``outbox.put``."""
        waiter = _Waiter(
            {name for name in registry.names_in(message.destinations)
             if name in self._destinations
             and not self.holding(name)}
        )
        if not waiter.remaining:
            waiter.future.set_result({})
            return waiter.future
        with self._waiters_lock:
            self._waiters[message.id] = waiter
        return waiter.future

    def forget(self, message: Message) -> None:
        """Drop interest in a message that never made it into the outbox."""
        with self._waiters_lock:
            self._waiters.pop(message.id, None)

    def _call_on_error(self, message: Message, lane: str, reason: str) -> None:
        try:
            self._on_error(message, lane, reason)  # type: ignore[misc]
        except Exception as exc:
            self.internal_error("OCDP311", f"on_error:{type(exc).__name__}",
                                f"[CDP] OCDP311 the on_error callback raised {exc!r}; "
                                "delivery goes on")

    def finished(
        self, lane: str, items: list[Leased], ok: bool, reason: str | None, status: int | None
    ) -> None:
        if not ok and self._on_error is not None:
            # Off the engine's loop: a slow or failing callback must not hold delivery.
            for item in items:
                done = self._callbacks.submit(self._call_on_error, item.message, lane,
                                              reason or "")
                self._pending_callbacks.add(done)
                done.add_done_callback(self._pending_callbacks.discard)
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
                    if not waiter.future.done():  # a caller that gave up cancelled it
                        waiter.future.set_result(waiter.results)

    def settled(self) -> bool:
        """Nothing of this process's is left to do: nothing due or waiting to be retried, and
        no lease of this process's still open (another process's leases are its own)."""
        stats = self.outbox.stats(clock.wall())
        for name in self.destinations:
            if self.holding(name):
                continue
            lane_stats = stats.get(name)
            if lane_stats is not None and (lane_stats.pending or lane_stats.in_flight_here):
                return False
            lane = self._lanes.get(name)
            if lane is not None and lane.inflight:
                return False
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until ``settled``, at most ``timeout``: the queue is read on a thread of its
        own, so a queue that stops answering (a paused Redis) cannot hold the caller longer."""
        deadline = clock.monotonic() + max(0.0, timeout)
        self.notify(force=True)
        delay = 0.001
        while True:
            probe = self._probe.submit(self._settled_here)
            try:
                if probe.result(max(0.0, deadline - clock.monotonic())):
                    return True
            except concurrent.futures.TimeoutError:
                return False
            except OpenCDPError as exc:
                self.log.error(f"[CDP] OCDP307 cannot read the outbox: {self.scrub(str(exc))}")
                return False
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)

    def _settled_here(self) -> bool:
        with reentry.region():
            return self.settled()

    def stop(self, timeout: float) -> None:
        """Stop the loop (cancelling what is still in flight), join the thread, and give
        the ``on_error`` calls still queued the time that is left."""
        deadline = clock.monotonic() + max(0.1, timeout)
        self._closed = True
        loop = self.loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(max(0.1, timeout))
        concurrent.futures.wait(list(self._pending_callbacks),
                                timeout=max(0.0, deadline - clock.monotonic()))
        for pool in (self._callbacks, self._housekeeping, self._lookups, self._probe):
            pool.shutdown(wait=False)

    # reading ------------------------------------------------------------------------------
    def snapshot(self) -> EngineSnapshot:
        lanes = {}
        for name in self.destinations:
            lane = self._lanes.get(name)
            hold = self.holds.get(name)
            state, since, purged = ((None, None, 0) if hold is None
                                    else (hold.state, hold.since, hold.purged))
            if lane is None:
                lanes[name] = LaneSnapshot(name, LaneCounters(), "CLOSED", 0, None, None, False,
                                           0, {}, 0, hold=state, hold_since=since,
                                           hold_purged=purged)
                continue
            breaker = lane.breaker
            lanes[name] = LaneSnapshot(
                name, lane.counters.copy(), breaker.state, breaker.failure_count,
                breaker.last_failure, self.scrub(breaker.last_failure_reason or "") or None,
                lane.failing, lane.inflight, lane.bucket.to_dict(), lane.bucket.throttled,
                max(0.0, clock.monotonic() - lane.progress_at), lane.errors_since_progress,
                lane.last_error, hold=state, hold_since=since, hold_purged=purged,
            )
        running = self._thread is not None and self._thread.is_alive()
        return EngineSnapshot(lanes, self.restarts, dict(self.internal_errors), running)
