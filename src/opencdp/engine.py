"""Wiring, in one place: what a ``Client`` is built from, and what both facades call.

``build(config)`` makes the guards, the outbox, the idempotency guard, the destinations and
the dispatcher; ``Engine`` queues messages (all or none, durable or loud), runs the
out-of-queue requests (transactional sends, pings) and reports health. The facades in
``client.py`` only turn arguments into messages and wait.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from . import clock, reentry, registry
from .config import ClientConfig
from .destinations.base import Destination, Failure, Response, build_destinations
from .destinations.opencdp import Gateway, build_send, error_message
from .dispatch import Dispatcher, Outcomes
from .errors import (
    ClientClosedError,
    DeliveryError,
    OpenCDPError,
    OutboxError,
    QueueFullError,
    SendError,
    TransportError,
)
from .guards import GuardPolicy, Guards, check_track_key
from .health import Health, snapshot
from .holding import Hold
from .logs import Log
from .message import Message
from .outbox.base import Outbox
from .outbox.url import open_outbox, safe_url
from .policies.idempotency import IdempotencyGuard, SharedIdempotencyGuard
from .snapshot import EngineSnapshot
from .threads import DaemonExecutor

__all__ = ["Engine", "FlushResult", "build"]

_SEND_WORD = {"email": "email", "push": "push", "sms": "SMS", "whatsapp": "WhatsApp"}


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What finished between the previous ``flush()`` and the last one, per destination:
    delivered and dead-lettered; ``settled`` is what the last ``flush()`` returned."""

    settled: bool
    delivered: dict[str, int]
    dead_lettered: dict[str, int]
    seconds: float


def _gateway(destinations: list[Destination]) -> Gateway:
    """The primary destination, which also carries transactional sends and pings."""
    primary = registry.primary()
    for destination in destinations:
        if destination.name == primary and isinstance(destination, Gateway):
            return destination
    raise LookupError(f"the primary destination {primary!r} was not built")


Resolve = Callable[["concurrent.futures.Future[Outcomes] | None", "BaseException | None"], object]
"""How ``Engine.enqueue_soon`` answers: what ``enqueue`` returned, or what it raised."""


class Engine:
    """Everything both facades share, built once per client."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.log = Log(config.logger, config.debug)
        self.guards = Guards(
            GuardPolicy(strict=config.strict, silence=config.silence, schemas=config.schemas,
                        email_hint=config.email_hint, max_event_names=config.max_event_names),
            self._report,
        )
        self.outbox: Outbox = open_outbox(
            config.queue, max_queue_size=config.max_queue_size, queue_full=config.queue_full,
            queue_full_timeout=config.queue_full_timeout, durability=config.durability,
            logger=self.log, max_queue_bytes=config.max_queue_bytes,
            queue_timeout=config.queue_timeout, spill_path=config.spill_path,
        )
        shared = self.outbox.shared_state()
        self.idempotency: IdempotencyGuard = (
            IdempotencyGuard(ttl=config.idempotency_ttl) if shared is None
            else SharedIdempotencyGuard(shared[0], f"{shared[1]}idem:", ttl=config.idempotency_ttl)
        )
        self.secrets = config.secrets
        destinations = build_destinations(config)
        self.primary = registry.primary()
        self.gateway = _gateway(destinations)
        holds = {}
        for held in config.held_destinations:
            holds[held] = Hold(held, config.hold_retention, self.log, config.silence)
            if config.send:
                holds[held].start(self.outbox, clock.wall())
        self.dispatcher = Dispatcher(config, self.outbox, self.log, destinations,
                                     scrub=self.scrub, on_error=config.on_error, holds=holds)
        self.dual = config.dual_write
        self.everywhere = registry.bits(d.name for d in destinations)
        """Every destination this client writes to: the bit set a message gets by default."""
        self.blocking = config.delivery == "blocking"
        self.closed = False
        self.before_send = config.before_send
        # The hot path of background calls to a memory queue that never refuses a put.
        self.fast = not (self.blocking or self.outbox.durable or not config.send
                         or config.queue_full != "drop_oldest" or self.before_send is not None)
        self.put = self.outbox.put
        self.notify = self.dispatcher.notify
        self.intake_failures = 0
        self.not_sent = 0
        self.dropped_by_hook: dict[str, int] = {}
        self._drop_lock = threading.Lock()
        if self.before_send is not None:
            _hooked.add(self)
        self.last_flush: FlushResult | None = None
        self._flushed: dict[str, tuple[int, int]] = {}
        self._close_lock = threading.Lock()
        self._closing: concurrent.futures.Future[bool] | None = None
        self._handoff: deque[tuple[Message, str | None]] = deque()
        """Calls made from a signal handler that interrupted this thread's own call: queued
        by the next call, flush or close, or within a second by the engine (reentry.py)."""
        self._closer = DaemonExecutor(1, "opencdp-close")
        self._intake = DaemonExecutor(16, "opencdp-intake")
        self.dispatcher.housework = self._drain_handoff
        self._warned_sends: set[str] = set()
        for code, text in config.notices:
            self.log.warning(f"[CDP] {code} {text}")
        if config.customer_io is not None:
            cio = config.customer_io
            for finding in check_track_key(cio.site_id, cio.api_key, cio.app_api_key):
                self._report(finding)
        if config.start_worker and config.send:
            self.dispatcher.start()
        if config.register_atexit:
            ref = weakref.ref(self)

            def _at_exit() -> None:
                engine = ref()
                if engine is not None:
                    engine.close(config.shutdown_timeout)

            atexit.register(_at_exit)

    def scrub(self, text: str) -> str:
        return self.config.scrub(text) or ""

    def _report(self, finding: Any) -> None:
        text = f"[CDP] {finding.code} {finding.message}"
        if finding.severity == "debug":
            self.log.info_debug(text)
        elif finding.severity == "error":
            self.log.error(text)
        else:
            self.log.warning(text)

    # queueing -----------------------------------------------------------------------------
    def enqueue(self, message: Message, key: str | None = None
                ) -> concurrent.futures.Future[Outcomes] | None:
        """Queue ``message`` for all its destinations or for none. ``key`` is its identity
        for the idempotency guard; it is claimed only for a write that succeeded.

        Called from a signal handler that interrupted one of our calls on this thread, the
        message is handed over instead (``reentry.py``) and the call does not wait for it."""
        if self.closed:
            raise ClientClosedError("this client is closed; create a new one")
        if not message.destinations:  # dropped by before_send
            return None
        if reentry.inside():
            self._handoff.append((message, key))
            return None
        with reentry.region():
            if self._handoff:
                self._drain_handoff()
            return self._enqueue(message, key)

    def enqueue_soon(self, message: Message, key: str | None, resolve: Resolve) -> None:
        """``enqueue`` for an event loop, never waiting here: ``resolve(result, None)`` with
        what ``enqueue`` returns, or ``resolve(None, error)`` with what it raises, called
        once from another thread (or this one). A queue with an asynchronous put (Redis:
        ``put_soon``) answers from its committer, so a thousand coroutines cost no thread
        each; anything else (a claim in the idempotency guard, a handed-over call, another
        queue) runs ``enqueue`` on the intake threads (daemon threads: asyncio's default
        executor is gone at exit)."""
        if self.closed:
            raise ClientClosedError("this client is closed; create a new one")
        if key is None and message.destinations and self.config.send and \
                not reentry.inside() and not self._handoff:
            expected = self.dispatcher.expect(message) if self.blocking else None

            def answered(error: BaseException | None) -> None:
                if error is None:
                    self.dispatcher.notify(force=self.blocking)
                    resolve(expected, None)
                elif isinstance(error, OutboxError):
                    try:
                        self._not_queued(message, None, error)
                    except OutboxError as raised:
                        resolve(None, raised)
                    else:
                        resolve(None, None)
                else:
                    resolve(None, error)

            try:
                started = self.outbox.put_soon(message, answered)
            except OutboxError as exc:
                answered(exc)
                return
            if started:
                return
            if expected is not None:
                self.dispatcher.forget(message)
        self._intake.submit(self.enqueue, message, key).add_done_callback(
            lambda f: resolve(None, f.exception()) if f.exception() is not None
            else resolve(f.result(), None))

    def hook_dropped(self, message: Message, reason: str, detail: str | None = None
                     ) -> Message:
        """Count a message ``before_send`` dropped and return it for no destination.

        ``returned_none`` is the hook's own decision and is not logged; ``raised`` and
        ``invalid`` (it returned what the guards refuse, or changed a read-only field) are
        logged as OCDP344 once per cause per minute."""
        wait = not reentry.inside()  # read outside the region, which makes it True
        with reentry.region():
            if self._drop_lock.acquire(blocking=wait):
                try:
                    self.dropped_by_hook[reason] = self.dropped_by_hook.get(reason, 0) + 1
                finally:
                    self._drop_lock.release()
        if detail is not None and "OCDP344" not in self.config.silence:
            self.log.warning_once(
                f"before_send:{reason}:{detail.partition(':')[0][:40]}",
                f"[CDP] OCDP344 before_send {self.scrub(detail)[:300]}; the {message.kind} "
                f"message was dropped, not sent (counted in client.health().dropped_by_hook"
                f"[{reason!r}])", interval=60.0)
        return message._replace(destinations=0)

    def _drain_handoff(self) -> None:
        handoff = self._handoff
        while handoff:
            try:
                message, key = handoff.popleft()
            except IndexError:
                return
            with reentry.region():
                try:
                    self._enqueue(message, key)
                except OpenCDPError:
                    pass  # counted and logged as for any call (OCDP307)

    def _enqueue(self, message: Message, key: str | None
                 ) -> concurrent.futures.Future[Outcomes] | None:
        if key is not None and not self.idempotency.claim(key):
            return None
        if not self.config.send:
            self.not_sent += 1
            return None
        future = self.dispatcher.expect(message) if self.blocking else None
        try:
            self.outbox.put(message)
        except OutboxError as exc:
            self._not_queued(message, key, exc)
            return None
        self.dispatcher.notify(force=self.blocking)
        return future

    def _not_queued(self, message: Message, key: str | None, exc: OutboxError) -> None:
        """Count and log a put that failed; raise it when the caller asked for that."""
        if key is not None:
            self.idempotency.release(key)
        self.dispatcher.forget(message)
        self.intake_failures += 1
        self.log.warning_once(
            f"intake:{type(exc).__name__}",
            f"[CDP] OCDP307 could not queue a {message.kind} message anywhere: "
            f"{self.scrub(str(exc))} (counted in client.health().intake_failures)",
            interval=60.0,
        )
        if isinstance(exc, QueueFullError) or self.config.fail_on_exception:
            raise exc

    # waiting ------------------------------------------------------------------------------
    def settle(self, outcomes: Outcomes | None) -> None:
        """Raise for a blocking call whose OpenCDP write failed, if asked to."""
        if not outcomes:
            return
        result = outcomes.get(self.primary)
        if result is not None and not result[0] and self.config.fail_on_exception:
            raise DeliveryError(f"OpenCDP did not accept the message: {result[1]}",
                                status=result[2])

    def timed_out(self) -> None:
        if self.config.fail_on_exception:
            raise DeliveryError(
                f"not delivered within blocking_timeout={self.config.blocking_timeout:g} s; "
                "the message stays queued"
            )

    def flush(self, timeout: float) -> bool:
        """Wait for this process's work; ``last_flush`` then counts what finished since the
        previous flush (or since the start)."""
        if reentry.inside():
            self.log.warning_once(
                "flush:reentered", "[CDP] OCDP341 flush() was called from a signal handler "
                "that interrupted a call of this client on the same thread; it cannot wait "
                "there and returns False (delivery goes on; use install_signal_handlers)")
            return False
        started = clock.monotonic()
        self._drain_handoff()
        settled = self.dispatcher.flush(timeout) if self.dispatcher.started else \
            not self.config.send or self.dispatcher.settled()
        now = {n: (lane.counters.delivered, lane.counters.dead)
               for n, lane in self.dispatcher.snapshot().lanes.items()}
        base = self._flushed
        self.last_flush = FlushResult(
            settled,
            {n: d - base.get(n, (0, 0))[0] for n, (d, _) in now.items()},
            {n: x - base.get(n, (0, 0))[1] for n, (_, x) in now.items()},
            clock.monotonic() - started,
        )
        self._flushed = now
        return settled

    # out-of-queue requests ----------------------------------------------------------------
    def prepare_send(self, channel: str, fields: dict[str, Any]) -> dict[str, Any]:
        if self.closed:
            raise ClientClosedError("this client is closed; create a new one")
        body = build_send(channel, fields)
        if self.dual and channel not in self._warned_sends:
            self._warned_sends.add(channel)
            if "OCDP343" not in self.config.silence:
                self.log.warning(
                    f"[CDP] OCDP343 Transactional messaging {_SEND_WORD[channel]} goes to "
                    "OpenCDP only, never to Customer.io, so it is never sent twice; identify, "
                    "track and device calls still dual-write. To mute this line: "
                    "silence={'OCDP343'} (or OPENCDP_SILENCE=OCDP343)."
                )
        return body

    async def send(self, channel: str, body: dict[str, Any]) -> Response | Failure:
        if not self.config.send:  # send=False: checked, counted, not delivered
            self.not_sent += 1
            return Response(200, b'{"sent":false}', {})
        return await self.dispatcher.exchange(self.primary, self.gateway.send(channel, body))

    def send_result(self, channel: str, result: Response | Failure) -> dict[str, Any] | None:
        word = _SEND_WORD[channel]
        if isinstance(result, Response) and 200 <= result.status < 300:
            self.log.debug(f"[CDP] {word} sent successfully")
            try:
                parsed = orjson.loads(result.body) if result.body else {}
            except orjson.JSONDecodeError:
                parsed = {"raw": result.body.decode("utf-8", "replace")}
            return parsed if isinstance(parsed, dict) else {"result": parsed}
        error: DeliveryError
        if isinstance(result, Failure):
            error = TransportError(
                f"{word} send did not complete ({result.reason}); "
                + ("it may have been received, so it was not retried"
                   if result.maybe_received else "no gateway host was reachable"),
                maybe_received=result.maybe_received,
            )
        else:
            error = SendError(
                f"{word} send refused with HTTP {result.status}: "
                f"{self.scrub(error_message(result.body))}",
                status=result.status, body=self.scrub(
                    result.body[:500].decode("utf-8", "replace")).encode(),
            )
        self.log.error(f"[CDP] Send {channel} error: {error}")
        if self.config.fail_on_exception:
            raise error
        return None

    async def ping(self) -> bool:
        result = await self.dispatcher.exchange(self.primary, self.gateway.probe())
        ok = isinstance(result, Response) and result.status == 200
        if ok:
            self.log.debug("[CDP] Connection Established! Status: 200")
        else:
            self.log.error("[CDP] Failed to connect to CDP Server")
        return ok

    # reading ------------------------------------------------------------------------------
    def stats(self) -> EngineSnapshot:
        return self.dispatcher.snapshot()

    def health(self) -> Health:
        disabled = self.config.disabled_destinations
        queue_error = None
        try:
            if reentry.inside():  # the interrupted call may hold the queue: counts unread
                queue = {}
            else:
                with reentry.region():
                    queue = self.outbox.stats(clock.wall())
        except OpenCDPError as exc:
            queue, queue_error = {}, self.scrub(f"{type(exc).__name__}: {exc}")
        health = snapshot(self.dispatcher.snapshot(), queue, disabled=disabled,
                          guards=self.guards.counts(),
                          idempotency_suppressed=self.idempotency.suppressed,
                          intake_failures=self.intake_failures, queue_error=queue_error,
                          not_sent=self.not_sent, scrub_text=self.scrub)
        if self.dropped_by_hook:
            health = dataclasses.replace(health, dropped_by_hook=dict(self.dropped_by_hook))
        return health

    def close(self, timeout: float) -> bool:
        """Drain within ``timeout`` and release everything; True only when this process's
        work was all delivered or dead-lettered. A second or concurrent ``close`` waits (within
        its own timeout) for the first and returns the same answer. From a signal handler that
        interrupted this client's own call on the same thread, the close runs as soon as that
        call returns, and this one returns False at once."""
        if reentry.inside():
            reentry.defer(lambda: self.close(timeout))
            return False
        with reentry.region(), self._close_lock:
            first = self._closing is None
            if first:
                self._closing = concurrent.futures.Future()
                self.closed = True
                self.fast = False
        closing = self._closing
        assert closing is not None
        if not first:
            try:
                return closing.result(max(0.0, timeout))
            except concurrent.futures.TimeoutError:
                return False
        drained = False
        try:
            drained = self._close(max(0.0, timeout))
        finally:
            closing.set_result(drained)
        return drained

    def _close(self, timeout: float) -> bool:
        deadline = clock.monotonic() + timeout
        self._drain_handoff()
        drained = self.flush(timeout) if self.dispatcher.started else False
        self.dispatcher.stop(max(0.1, deadline - clock.monotonic()))
        if not drained and not self.outbox.durable:
            count = self.outbox.pending_messages()
            if count:
                self.log.warning(f"[CDP] OCDP302 closed with {count} undelivered message(s) in "
                                 "the memory queue; they are lost. Use a durable queue "
                                 "(sqlite:/// or redis://) to keep them across restarts, or "
                                 "raise shutdown_timeout.")
        # Bounded: a paused Redis or a long checkpoint must not hold the caller past its time.
        done = self._closer.submit(self._close_outbox, drained)
        try:
            done.result(max(0.5, deadline - clock.monotonic()))
        except concurrent.futures.TimeoutError:
            self.log.error("[CDP] OCDP307 closing the queue did not finish within the close "
                           "timeout; it goes on in the background")
            return False
        finally:
            self._closer.shutdown(wait=False)
        return drained

    def _report_left(self) -> None:
        """What a durable queue keeps at close, so a shutdown never ends in silence."""
        left = {name: stats.pending + stats.in_flight_here
                for name, stats in self.outbox.stats(clock.wall()).items()}
        if any(left.values()):
            counts = ", ".join(f"{n} for {name}" for name, n in left.items() if n)
            self.log.info(f"[CDP] OCDP342 closed with {counts} pending in "
                          f"{safe_url(self.config.queue)}; delivered at the next start")

    def _close_outbox(self, drained: bool) -> None:
        try:
            with reentry.region():
                if not drained and self.outbox.durable:
                    self._report_left()
                self.outbox.close()
        except OpenCDPError as exc:
            self.log.error(f"[CDP] OCDP307 closing the outbox failed: {self.scrub(str(exc))}")


def build(config: ClientConfig) -> Engine:
    return Engine(config)


_hooked: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Engines with a ``before_send``, whose drop counter's lock a forked child renews: a
thread of the parent may have held it at the fork, and that thread does not exist there."""


def _after_fork_in_child() -> None:
    for engine in list(_hooked):
        engine._drop_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
