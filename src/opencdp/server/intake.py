"""How the relay stores person calls: checked on the event loop, written in batches.

Measured under load (docs/relay.md, "Where the time goes"), the relay's ingest spent most of
its wall time not in its own code but in handing every request to a thread and back
(``run_in_threadpool`` around ``client.track``): two thread switches per request, each of which
waits for a CPU slot on a busy host, and one durable commit per request. So:

- The checks and the envelope (``Calls``, the same code ``Client.track`` runs) are pure and
  cost microseconds: they run on the event loop, and a refusal is answered without a thread.
- The messages of all requests that arrive while a write is under way are written together,
  by one writer thread, with the queue's ``put_many`` (one SQLite transaction; one Redis
  script call, i.e. one round trip). A request is answered only when its batch is durable:
  the relay's rule "2xx only for what was stored" holds per message.
- A batch the queue refuses as a whole (disk full, Redis refusing writes) is written again
  one message at a time through ``Engine.enqueue``, the path every ``Client`` call takes, so
  each message is spilled, refused or counted exactly as a lone call would be. A batch whose
  write may have reached Redis without an answer (``MaybeStoredError``) is written with
  ``put_unless_stored``, so nothing the queue already holds is written twice.
- Calls with an idempotency key, through a ``before_send`` hook, or to a client that does not
  send, take ``Engine.enqueue`` one by one, because their bookkeeping lives there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..calls import Calls, Queued
from ..errors import ClientClosedError, OutboxError
from ..message import Message
from ..outbox.base import MaybeStoredError
from ..threads import DaemonExecutor

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Intake"]

MAX_BATCH = 512
"""Messages per write at most, so that one write (and the requests waiting behind it) stays
short when thousands arrive at once; under the benchmark's 64 connections batches stay far
below it."""

_Item = tuple[Message, "str | None", "asyncio.Future[None]"]


class Intake:
    """One per relay process: ``await intake.store(queued)`` returns once the message is
    durable, or raises what ``Client.track`` would have raised."""

    def __init__(self, client: Client) -> None:
        self.engine = client.engine
        self.calls = Calls(self.engine)
        self._pending: list[_Item] = []
        self._busy = False
        self._writer = DaemonExecutor(1, "opencdp-relay-intake")
        self.batches = 0
        self.stored = 0

    def __repr__(self) -> str:
        return f"<Intake {self.stored} stored in {self.batches} batches>"

    async def store(self, queued: Queued) -> None:
        message, key = queued
        if self.engine.before_send is not None:
            message = self.calls.admit(message)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((message, key, future))
        if not self._busy:
            self._busy = True
            # call_soon, not now: the requests whose bytes arrived in this same turn of the
            # loop join this batch.
            loop.call_soon(self._flush, loop)
        await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        if not batch:
            self._busy = False
            return
        items = [(message, key) for message, key, _ in batch]
        try:
            written = self._writer.submit(self._write, items)
        except BaseException as exc:  # the interpreter is exiting: no thread can be started
            self._answer(batch, [exc] * len(batch))
            self._busy = False
            return

        def done(result: concurrent.futures.Future[list[BaseException | None]]) -> None:
            loop.call_soon_threadsafe(self._written, loop, batch, result)

        written.add_done_callback(done)

    def _written(self, loop: asyncio.AbstractEventLoop, batch: list[_Item],
                 result: concurrent.futures.Future[list[BaseException | None]]) -> None:
        exc = result.exception()
        self._answer(batch, [exc] * len(batch) if exc is not None else result.result())
        self._flush(loop)

    @staticmethod
    def _answer(batch: list[_Item], errors: Sequence[BaseException | None]) -> None:
        for (_, _, future), error in zip(batch, errors, strict=True):
            if future.done():  # the request was cancelled (its client hung up)
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    # the writer thread -------------------------------------------------------------------
    def _write(self, items: list[tuple[Message, str | None]]) -> list[BaseException | None]:
        engine = self.engine
        if engine.closed:
            closed = ClientClosedError("this client is closed; create a new one")
            return [closed] * len(items)
        errors: list[BaseException | None] = [None] * len(items)
        plain = [i for i, (message, key) in enumerate(items)
                 if key is None and message.destinations]
        done: set[int] = set()
        outbox = engine.outbox
        primary = getattr(outbox, "primary", outbox)  # SpilledOutbox's queue
        if len(plain) > 1 and engine.config.send and not getattr(outbox, "spilling", False):
            since = time.time()
            messages = [items[i][0] for i in plain]
            try:
                primary.put_many(messages)
            except MaybeStoredError:
                for i in plain:
                    try:
                        primary.put_unless_stored(items[i][0], since)
                    except OutboxError as exc:
                        errors[i] = exc
                    done.add(i)
            except OutboxError:
                pass  # none of them stored: each goes the way a lone call goes, below
            else:
                done.update(plain)
                self.batches += 1
            if done:
                engine.dispatcher.notify()
        for i, (message, key) in enumerate(items):
            if i in done:
                continue
            try:
                engine.enqueue(message, key)
            except Exception as exc:
                errors[i] = exc
        self.stored += sum(error is None for error in errors)
        return errors
