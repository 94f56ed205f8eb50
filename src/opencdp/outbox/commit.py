"""Group commit: puts that arrive together share one round trip to the queue.

A durable put costs one round trip, and a round trip on loopback costs far more than the
write itself (a bare ``XADD`` loop: ~14,000/s on one connection; the same commands pipelined:
several times that). So puts wait in one line, and whoever sends takes everything waiting
and writes it in one step.

Who sends:

- A thread that finds nobody sending sends at once, its own put and whatever queued before
  it: alone, a put costs what it cost before (no timer, no hand-off to another thread).
- A thread that finds a round trip under way does not open a second one beside it: its put
  rides in the next group (an empty line and no sender: it sends without even a ticket).
- A thread that finds the senders busy waits on its own ticket. When a sender's round trip
  ends and more puts are waiting, it hands the line to the committer threads (``senders``
  daemon threads, started on first need), which keep sending while puts keep coming. A
  caller's thread therefore sends for others only until its own put is answered.
- Up to ``senders`` round trips are in flight at once, each on a connection of its own, so
  the next group does not wait for the previous one's answer (measured on loopback: 16
  coroutines carried about 1.6 times as much with two senders as with one; 16 threads about
  the same, once a thread sends only when nobody else is). A producer has one put in flight
  at a time, so its own puts stay in order.
- Alone, a put costs 2.5 microseconds of bookkeeping more than before (measured with a write
  that does nothing), beside a round trip of 150-250 microseconds here.
- A coroutine's put (``submit``) never sends on the event loop: it queues a ticket with a
  callback and wakes the committers; the callback hands the answer to the loop.

Each ticket is resolved only when the queue answered for its round trip; an error of a round
trip fails exactly its puts, each with an exception of its own. A thread waits at most
``wait`` seconds (the round trip under way plus its own); past that it raises
``MaybeStoredError`` (its put may still be sent), which the spill answers with
``put_unless_stored``, so nothing is written twice.

Nothing here survives ``fork`` (``reset``: the child gets a fresh line and its own committer)
or needs an executor at interpreter exit (a plain daemon thread; when no thread can be started
any more, the sending thread keeps sending until the line is empty). A signal handler whose
put interrupted this thread's own put must not wait for it: the interrupted frame may be the
sender, holding the line. Such a put raises ``OutboxError`` at once (the spill takes the
message); the engine hands those calls over before they get here (``reentry.py``).
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ..errors import OpenCDPError, OutboxError
from .base import Done, MaybeStoredError

__all__ = ["GroupCommit"]

Row = TypeVar("Row")
_ident = threading.get_ident


class _Ticket(Generic[Row]):
    __slots__ = ("callback", "done", "error", "row")

    def __init__(self, row: Row, callback: Done | None) -> None:
        self.row = row
        self.callback = callback
        self.error: BaseException | None = None
        self.done: threading.Lock | None = None
        if callback is None:
            self.done = threading.Lock()
            self.done.acquire()

    def finish(self, error: BaseException | None) -> None:
        if self.callback is not None:
            # The caller's callback runs on the sender's thread: its failure is its own and
            # must not cost the other puts of the round trip their answer.
            with contextlib.suppress(Exception):
                self.callback(error)
            return
        self.error = error
        assert self.done is not None
        self.done.release()


def _own(exc: OpenCDPError) -> OpenCDPError:
    """An exception of the same kind for each put: one instance raised in many threads would
    share (and grow) one traceback."""
    try:
        return type(exc)(*exc.args)
    except TypeError:
        return OutboxError(str(exc))


class GroupCommit(Generic[Row]):
    """``commit(row)`` returns once ``write`` stored a round trip that held ``row``.

    ``write(rows)`` stores every row or raises an ``OpenCDPError`` for all of them, or
    returns one error (or None) per row when the rows' fates differ (several scripts in one
    pipeline); it is called with at most ``limit`` rows, by up to ``senders`` threads at once.
    """

    def __init__(self, write: Callable[[Sequence[Row]], Sequence[OpenCDPError | None] | None],
                 *, wait: float,
                 limit: int = 512, senders: int = 2, name: str = "opencdp-commit") -> None:
        self._write = write
        self.wait = wait
        self.limit = limit
        self.senders = max(1, senders)
        self._name = name
        self.rounds = 0
        """Round trips sent (what the benchmark divides puts by)."""
        self.reset()

    def reset(self) -> None:
        """Fresh state, also in a forked child (the parent's line and committer stay there)."""
        self._line: deque[_Ticket[Row]] = deque()
        self._kicked = threading.Event()
        self._committers: list[threading.Thread] = []
        self._no_thread = False
        # Senders at work, up to ``senders`` (each round trip on its own connection: while
        # one waits for the server, the next group is already on its way). Counted under a
        # lock held for a few bytecodes, never across a wait.
        self._busy = 0
        self._counting = threading.Lock()
        self._putting: dict[int, bool] = {}
        self._closed = False

    # callers --------------------------------------------------------------------------
    def commit(self, row: Row) -> None:
        me = _ident()
        if me in self._putting:
            raise OutboxError("a put from a signal handler interrupted this thread's own put, "
                              "which it cannot wait for; not queued here")
        self._putting[me] = True
        try:
            if not self._line and self._take(alone=True):
                self._alone(row)  # nobody to group with: no ticket, no line
                return
            ticket: _Ticket[Row] = _Ticket(row, None)
            self._line.append(ticket)
            # A thread sends only when no round trip is under way: otherwise its put rides
            # in the next group, not in a group of one beside it.
            if self._take(alone=True):
                self._lead(ticket)
            assert ticket.done is not None
            if not ticket.done.acquire(timeout=self.wait):
                raise MaybeStoredError(
                    f"the queue did not answer a grouped put within {self.wait:g} s; it may "
                    "still store it")
            if ticket.error is not None:
                raise ticket.error
        finally:
            self._putting.pop(me, None)

    def submit(self, row: Row, done: Done) -> None:
        """Queue ``row`` for the committer threads; ``done(None)`` once it is stored,
        ``done(error)`` if not (from the sender's thread)."""
        self._line.append(_Ticket(row, done))
        self._kick()

    def __len__(self) -> int:
        return len(self._line)

    def close(self) -> None:
        """Stop the committer once the line is empty (what waits is still sent)."""
        self._closed = True
        self._kicked.set()

    # sending ---------------------------------------------------------------------------
    def _lead(self, ticket: _Ticket[Row]) -> None:
        """Send until this thread's own ticket is answered, then hand the line on."""
        done = ticket.done
        assert done is not None
        try:
            # Our ticket is answered, in another sender's round trip, or still in the line.
            while done.locked() and self._line:
                self._round()
        finally:
            self._give()
        if self._line:
            self._kick()

    def _alone(self, row: Row) -> None:
        """Send one put that found nobody sending and nobody waiting; those who arrive
        meanwhile wait in the line, handed on after."""
        try:
            self.rounds += 1
            fates = self._write([row])
        finally:
            self._give()
            if self._line:
                self._kick()
        if fates is not None and fates[0] is not None:
            raise fates[0]

    def _take(self, alone: bool) -> bool:
        """A sender's slot: the only one (``alone``), or one of ``senders``."""
        with self._counting:
            if self._busy >= (1 if alone else self.senders):
                return False
            self._busy += 1
            return True

    def _give(self) -> None:
        with self._counting:
            self._busy -= 1

    def _round(self) -> None:
        line = self._line
        batch: list[_Ticket[Row]] = []
        while line and len(batch) < self.limit:
            try:
                batch.append(line.popleft())
            except IndexError:
                break
        if not batch:
            return
        self.rounds += 1  # a statistic: a lost increment costs nothing
        try:
            fates = self._write([t.row for t in batch])
        except OpenCDPError as exc:
            for t in batch:
                t.finish(_own(exc))
        except BaseException as exc:  # not ours to swallow, but no put may wait for ever
            for t in batch:
                t.finish(OutboxError(f"the queue write failed: {type(exc).__name__}: {exc}"))
            raise
        else:
            if fates is None:
                for t in batch:
                    t.finish(None)
            else:
                for t, fate in zip(batch, fates, strict=True):
                    t.finish(None if fate is None else _own(fate))

    def _kick(self) -> None:
        while len(self._committers) < self.senders and not self._no_thread:
            thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            try:
                thread.start()
            except RuntimeError:
                # Interpreter exit (3.12+ starts no threads): send here, until the line is empty.
                self._no_thread = not self._committers
                break
            self._committers.append(thread)
        if self._no_thread:
            while self._line and self._take(alone=False):
                try:
                    self._round()
                finally:
                    self._give()
            return
        self._kicked.set()

    def _loop(self) -> None:
        kicked, line = self._kicked, self._line
        while True:
            kicked.wait(1.0)
            kicked.clear()
            while line and self._take(alone=False):
                try:
                    self._round()
                except Exception:  # noqa: S110  (its tickets were failed with it; keep serving)
                    pass
                finally:
                    self._give()
            if self._closed and not line:
                return
