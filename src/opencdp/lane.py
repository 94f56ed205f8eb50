"""One destination's delivery loop, generic over the ``Destination`` it drives.

Each turn: wait until the breaker and the token bucket allow a request, lease what is due,
encode (each message the destination cannot take is dead-lettered alone), send, classify,
then ack, reschedule or dead-letter. Policies are applied in one fixed order:
breaker -> rate limit -> lease -> encode -> transport (+ failover) -> classify -> plan.

Nothing here raises into the engine: an error in a turn or an exchange is logged with a code
(once per cause per minute, every occurrence counted), its messages go back to the queue,
and the loop goes on. With a durable outbox, queue calls run on the lane's own thread, so a
stalled Redis or SQLite never freezes the event loop or the other lane.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from . import clock
from .destinations.base import Dead, Delivered, Destination, Outcome, Retry, Split
from .errors import OutboxError
from .outbox.base import DeadItem, Leased, RetryItem
from .policies.breaker import CircuitBreaker, State
from .policies.plan import RECENT_RESPONSES, plan_retry, signal
from .policies.ratelimit import SharedTokenBucket, TokenBucket
from .snapshot import LaneCounters
from .threads import DaemonExecutor
from .wire import Failure, Request, Response

if TYPE_CHECKING:
    from .config import ClientConfig
    from .holding import Hold
    from .logs import Log
    from .outbox.base import Outbox
    from .wire import Transport

__all__ = ["Lane", "LaneHost"]

T = TypeVar("T")
_IDLE_WAIT = 1.0
_POLL = 0.005
_HOT_SECONDS = 2.0
_FAILING_AFTER = 3


class LaneHost(Protocol):
    """What a lane uses of the dispatcher that runs it. A protocol, not the ``Dispatcher``
    class: the dispatcher builds its lanes, so naming it here would make the two modules
    import each other."""

    config: ClientConfig
    outbox: Outbox
    log: Log
    holds: dict[str, Hold]
    lease_seconds: float
    transport: Transport
    scrub: Callable[[str], str]

    def count_error(self, code: str) -> None: ...

    def internal_error(self, code: str, cause: str, text: str) -> None: ...

    def exchanged(self, lane: str, request: Request, result: Response | Failure,
                  start_ns: int) -> None: ...

    def finished(self, lane: str, items: list[Leased], ok: bool, reason: str | None,
                 status: int | None) -> None: ...


class Lane:
    """One destination's delivery loop on the engine's event loop."""

    def __init__(self, engine: LaneHost, destination: Destination, rate: float | None) -> None:
        self.engine = engine
        self.destination = destination
        self.name = destination.name
        self.prefix = destination.prefix
        config = engine.config
        self.breaker = CircuitBreaker(config.breaker, on_change=self._breaker_changed)
        shared = engine.outbox.shared_state()
        if shared is not None and rate is not None:
            self.bucket: TokenBucket = SharedTokenBucket(shared[0], f"{shared[1]}rate:{self.name}",
                                                         rate)
        else:
            self.bucket = TokenBucket(rate)
        self.hold = engine.holds.get(self.name)
        self.max_inflight = config.max_concurrent_requests
        self.batch_size = config.batch_size
        self.counters = LaneCounters()
        self.recent_429: deque[bool] = deque(maxlen=RECENT_RESPONSES)
        self.refused_run = 0
        self.credentials_refused = False
        self.progress_at = clock.monotonic()
        self.errors_since_progress = 0
        self.last_error: str | None = None
        self._dead_reasons: dict[str, list[Any]] = {}
        """Per reason: dead-lettered so far, how many of them the log has told, the reason."""
        self.inflight = 0
        self.idle = False
        self.last_work = 0.0
        self._wake_pending = False
        self.wake = asyncio.Event()
        self.slot = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pool = (DaemonExecutor(1, f"opencdp-{self.name}")
                      if engine.outbox.durable or shared is not None else None)

    @property
    def failing(self) -> bool:
        """Credentials were refused, or the last few messages answered were all refused
        (counted in messages, not requests: one refused batch of 20 is 20 refusals)."""
        return self.credentials_refused or self.refused_run >= _FAILING_AFTER

    def progressed(self) -> None:
        """Something was delivered or dead-lettered, or nothing is left to do: the lane is
        not stalled, whatever went wrong before."""
        self.progress_at = clock.monotonic()
        self.errors_since_progress = 0

    def _error(self, code: str, cause: str, text: str) -> None:
        self.errors_since_progress += 1
        self.last_error = self.engine.scrub(text)
        self.engine.internal_error(code, cause, text)

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

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
        while True:
            try:
                await self._turn()
            except asyncio.CancelledError:
                raise
            except OutboxError as exc:
                self._error("OCDP307", f"{self.name}:queue:{type(exc).__name__}",
                            f"{self.prefix} OCDP307 the queue cannot be read now "
                            f"(the lane retries): {exc}")
                await asyncio.sleep(0.5)
            except Exception as exc:
                self._error("OCDP306", f"{self.name}:turn:{type(exc).__name__}",
                            f"{self.prefix} OCDP306 error in the delivery lane "
                            f"(the lane goes on): {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)

    async def _turn(self) -> None:
        hold = self.hold
        if hold is not None and hold.holding:
            # Held on purpose: nothing leased, nothing due, so nothing is stalled.
            self.progressed()
            await self._sleep(_IDLE_WAIT)
            return
        wait = self.breaker.wait_time()
        if wait > 0:
            await self._sleep(wait)
            return
        if self.inflight >= self.max_inflight:
            self.slot.clear()
            await self.slot.wait()
            return
        outbox = self.engine.outbox
        now = clock.wall()
        due = await self._io(outbox.next_due, self.name, now)
        if due is None and not self.inflight:
            self.progressed()
        if due is None or due > now:
            if self.breaker.state == "HALF_OPEN" and not self.inflight:
                self._start(self.destination.probe())  # health recovers without traffic
                return
            if now - self.last_work < _HOT_SECONDS:
                # Recently busy: poll, so callers never pay for a wake-up (a cross-thread
                # wake is a syscall that hands this thread the GIL).
                await self._sleep(_POLL if due is None else min(due - now, _POLL))
                return
            self.idle = True
            due = await self._io(outbox.next_due, self.name, clock.wall())
            if due is None or due > now:
                await self._sleep(_IDLE_WAIT if due is None else due - now)
            self.idle = False
            return
        self.last_work = now
        wait = await self._io(self.bucket.take)
        if wait > 0:
            await asyncio.sleep(wait)
            return
        limit = self.batch_size if self.destination.batched else self.max_inflight - self.inflight
        items = await self._io(outbox.lease, self.name, limit, clock.wall(),
                               self.engine.lease_seconds)
        if items:
            self.counters.count("dispatched", [i for i in items if i.attempt == 0])
            await self._deliver(items)

    def _encode(self, items: list[Leased]) -> tuple[list[Request], list[Dead]]:
        """Encode; a message that makes the encoder raise is dead-lettered alone and the
        rest of its batch goes on."""
        try:
            return self.destination.encode(items)
        except Exception as exc:
            if len(items) == 1:
                self.engine.count_error("OCDP309")
                return [], [Dead(items, f"OCDP309 cannot be encoded for {self.name}: "
                                        f"{type(exc).__name__}: {str(exc)[:200]}")]
        good: list[Leased] = []
        refused: list[Dead] = []
        for item in items:
            one, dead = self._encode([item])
            if one:
                good.append(item)
            refused.extend(dead)
        requests, more = self.destination.encode(good) if good else ([], [])
        return requests, refused + more

    async def _deliver(self, items: list[Leased]) -> None:
        requests, refused = self._encode(items)
        for dead in refused:
            await self.apply(dead)
        for index, request in enumerate(requests):
            if index:
                wait = await self._io(self.bucket.take)
                while wait > 0:
                    await asyncio.sleep(wait)
                    wait = await self._io(self.bucket.take)
            self._start(request)

    def _start(self, request: Request) -> None:
        self.breaker.before_request()
        self.inflight += 1
        task = asyncio.get_running_loop().create_task(self._exchange(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, request: Request) -> Response | Failure:
        """One exchange, walking the destination's failover hosts; never raises."""
        transport = self.engine.transport
        while True:
            try:
                result = await transport.send(request)
            except Exception as exc:
                result = Failure(f"{type(exc).__name__}: {str(exc)[:200]}", "internal")
            try:
                host = self.destination.failover(request, result)
            except Exception:
                host = None
            if host is None:
                return result
            self.engine.log.debug(f"{self.prefix} {request.base} answered "
                                  f"{getattr(result, 'status', None) or result}, trying {host}")
            request.base = host

    async def _exchange(self, request: Request) -> None:
        started = time.perf_counter()
        start_ns = time.time_ns()
        probing = self.breaker.state != "CLOSED"
        try:
            result = await self.send(request)
        except asyncio.CancelledError:
            self._release(request.items)
            raise
        finally:
            self.inflight -= 1
            self.slot.set()
        self.counters.observe(time.perf_counter() - started)
        self.engine.exchanged(self.name, request, result, start_ns)
        try:
            await self._settle(request, result, probing)
        except Exception as exc:
            self._error(
                "OCDP307" if isinstance(exc, OutboxError) else "OCDP306",
                f"{self.name}:settle:{type(exc).__name__}",
                f"{self.prefix} {'OCDP307' if isinstance(exc, OutboxError) else 'OCDP306'} "
                "internal error handling a response (its messages go back to the queue): "
                f"{type(exc).__name__}: {exc}")
            try:
                await self.apply(Retry(request.items, f"internal error: {type(exc).__name__}"))
            except Exception:  # noqa: S110 - the lease expires and the queue hands them out again
                pass
        finally:
            self.wake.set()  # a retry may be due sooner than the lane's idle wait

    async def _settle(self, request: Request, result: Response | Failure, probing: bool) -> None:
        counters = self.counters
        verdict = signal(result)
        if isinstance(result, Response):
            counters.statuses[result.status] = counters.statuses.get(result.status, 0) + 1
            self.recent_429.append(verdict.throttled)
        else:
            counters.failures += 1
        if verdict.failure:
            self.breaker.record_failure(verdict.reason or "failure")
        else:
            self.breaker.record_success()
        explanation = None
        if isinstance(result, Response):
            explanation = self.destination.explain(result)
            if explanation is not None:
                self.engine.log.error_once(f"explain:{self.name}:{result.status}",
                                           f"{self.prefix} {explanation}")
        outcomes = self.destination.classify(request, result, clock.wall())
        if request.items and isinstance(result, Response):
            self.credentials_refused = verdict.refused
            dead = sum(len(o.items) for o in outcomes if isinstance(o, Dead))
            delivered = sum(len(o.items) for o in outcomes if isinstance(o, Delivered))
            self.refused_run = 0 if delivered else self.refused_run + (
                len(request.items) if verdict.refused else dead)
        code = explanation.split(" ", 1)[0] if explanation else None
        for outcome in outcomes:
            if isinstance(outcome, Split):
                half = len(outcome.items) // 2
                await self._deliver(outcome.items[:half])
                await self._deliver(outcome.items[half:])
            elif code is not None and isinstance(outcome, Dead):
                await self.apply(Dead(outcome.items, f"{outcome.reason} ({code}: see the log)",
                                      outcome.status), probing)
            else:
                await self.apply(outcome, probing)

    def _release(self, items: list[Leased]) -> None:
        """At shutdown, hand a cancelled exchange's messages back at once (same attempt), so
        the next start delivers them without waiting for the lease to expire."""
        if not items:
            return
        now = clock.wall()
        try:
            self.engine.outbox.retry(self.name, [
                RetryItem(i.message.id, now, "client closed mid-request", i.attempt)
                for i in items])
        except Exception:  # noqa: S110 - the lease expires and the queue hands them out again
            pass

    # outcomes ---------------------------------------------------------------------------
    async def apply(self, outcome: Outcome, probing: bool = False) -> None:
        engine = self.engine
        outbox = engine.outbox
        name = self.name
        items = outcome.items
        if not items:
            return
        if isinstance(outcome, Delivered):
            await self._io(outbox.ack, name, [item.message.id for item in items])
            self.progressed()
            self.counters.delivered += len(items)
            self.counters.count("delivered", items)
            if engine.log.enabled_debug:
                for item in items:
                    engine.log.debug(f"{self.prefix} {self.destination.describe(item.message)}")
            engine.finished(name, items, True, None, None)
            return
        if isinstance(outcome, Retry):
            plan = plan_retry(outcome, clock.wall(), engine.config.retry, probing=probing,
                              recent_429s=sum(self.recent_429))
            if plan.pause:
                self.bucket.pause(plan.pause)
            if plan.again:
                await self._io(outbox.retry, name, plan.again)
                self.counters.retried += len(plan.again)
                self.counters.count("retried", plan.retried)
            if plan.expired:
                await self.apply(Dead(plan.expired, "retry budget exhausted; last error: "
                                                    f"{outcome.reason}", outcome.status))
            return
        if isinstance(outcome, Dead):
            reason = engine.scrub(outcome.reason)
            await self._io(outbox.dead, name, [DeadItem(i.message.id, reason, outcome.status)
                                               for i in items], clock.wall())
            self.progressed()
            self.counters.dead += len(items)
            self.counters.count("dead", items)
            key = f"dead:{name}:{outcome.status}:{reason[:60]}"
            seen = self._dead_reasons
            if key in seen or len(seen) < 1000:
                entry = seen.setdefault(key, [0, 0, reason])
                entry[0] += len(items)
            if engine.log.warning_once(
                key,
                f"{self.prefix} OCDP303 dead-lettered {len(items)} message(s): {reason} "
                "(more with this reason are logged at most once a minute, and counted at "
                "close; see `opencdp queue list`)",
                interval=60.0,
            ) and key in seen:
                seen[key][1] = seen[key][0]
            engine.finished(name, items, False, reason, outcome.status)

    def _breaker_changed(self, old: State, new: State, breaker: CircuitBreaker) -> None:
        log = self.engine.log
        if new == "OPEN" and old == "HALF_OPEN":
            log.debug(f"{self.prefix} circuit probe failed; OPEN again")
        elif new == "OPEN":
            log.warning(
                f"{self.prefix} OCDP304 circuit OPEN after {breaker.failure_count} consecutive "
                f"failures (last: {self.engine.scrub(breaker.last_failure_reason or '')}); "
                "messages wait in the outbox, next probe in "
                f"{breaker.config.reset_timeout:g} s"
            )
        elif new == "CLOSED":
            log.warning(f"{self.prefix} OCDP304 circuit CLOSED (recovered)")

    async def drain_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def shutdown(self) -> None:
        for total, told, reason in self._dead_reasons.values():
            if total > told:
                self.engine.log.warning(
                    f"{self.prefix} OCDP303 dead-lettered {total} message(s) in all: {reason} "
                    "(see `opencdp queue list`)")
        if self._pool is not None:
            self._pool.shutdown(wait=False)
