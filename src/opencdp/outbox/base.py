"""The outbox seam: what every queue (memory, SQLite, Redis) promises the dispatcher.

An outbox keeps, per message and per destination, one delivery state::

    pending --lease--> in_flight --ack--> delivered
       ^                  |  \\--dead--> dead (kept, with reason, until replayed or purged)
       |                  |
       +----retry---------+      (attempt + 1, not before a time)
       +----lease expiry--+      (the leasing process died; same attempt)

so a message can be delivered to OpenCDP and still pending for Customer.io. The protocol is
synchronous on purpose: the memory outbox answers in nanoseconds, the durable ones in tens of
microseconds, and ``put`` must be durable when it returns on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .. import registry
from ..errors import ConfigurationError, OutboxError
from ..message import Message

__all__ = [
    "HOLD_STATES",
    "MAX_AHEAD",
    "DeadItem",
    "DeadLetter",
    "HoldMark",
    "Leased",
    "MaybeStoredError",
    "Outbox",
    "QueueStats",
    "RetryItem",
    "bound_due",
    "destination_bit",
]

MAX_AHEAD = 900.0
"""The furthest ahead the engine ever schedules a retry (``RetryConfig.max_delay`` and a
server's Retry-After are capped at it). A stored not-before time further ahead than this was
written under another clock (a process or a run before the wall clock stepped back), so it is
treated as due now: a step back of an hour never makes a message wait an hour."""


def bound_due(due: float, now: float) -> float:
    """A stored not-before time, bounded against the present (see ``MAX_AHEAD``)."""
    return now if due > now + MAX_AHEAD else due


class MaybeStoredError(OutboxError):
    """The write timed out after it was sent: the queue may have stored the message or not.
    Whoever writes it again elsewhere uses ``put_unless_stored`` to avoid a duplicate."""


def destination_bit(destination: str) -> int:
    """The bit of a destination name, or a ConfigurationError naming the valid ones."""
    try:
        return registry.bit(destination)
    except KeyError:
        raise ConfigurationError(
            f"unknown destination {destination!r}; expected one of {sorted(registry.names())}"
        ) from None


HOLD_STATES = ("held", "draining", "released", "finished")
"""A destination's hold mark, in the order a migration moves through it: ``held`` (copies
queue, nothing is sent), ``draining`` (``opencdp migrate rollback`` is delivering them in
order; clients still hold), ``released`` (clients deliver again) or ``finished``
(``opencdp migrate finish`` purged them; clients purge new copies and send none)."""


@dataclass(slots=True, frozen=True)
class HoldMark:
    """A destination's hold, as stored in the queue so every process sharing it agrees."""

    state: str
    since: float
    """Wall-clock seconds when the hold began."""
    changed: float
    """Wall-clock seconds of the last change of state."""


def _no_hold(what: str) -> ConfigurationError:
    return ConfigurationError(
        f"this queue cannot {what}: a held copy must survive restarts and be shared by every "
        "process, so hold mode needs a durable queue (sqlite:///path.db or redis://...)",
        option="send_to_customer_io")


@dataclass(slots=True)
class Leased:
    """A message handed to one destination's lane, with how often it was tried there before."""

    message: Message
    attempt: int = 0
    last_error: str | None = None
    enqueued_at: float = 0.0
    """Wall-clock seconds when the message entered the outbox (a replayed dead letter: when
    it was replayed). The retry budget's age counts from here, not from the event id's time,
    so a message that waited in a spill or a stopped queue is not aged out by the wait."""


@dataclass(slots=True, frozen=True)
class RetryItem:
    """Back to pending. ``attempt`` is the attempt count to store; None means one more.

    A failed half-open probe keeps the count: a destination outage is the breaker's business,
    and must not spend the retry budget of the messages that happened to be the probe.
    """

    id: int
    not_before: float
    error: str
    attempt: int | None = None


@dataclass(slots=True, frozen=True)
class DeadItem:
    id: int
    reason: str
    status: int | None = None


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """A message that one destination will never take as it is, and why."""

    message: Message
    destination: str
    reason: str
    status: int | None
    attempts: int
    dead_at: float


@dataclass(slots=True)
class QueueStats:
    pending: int = 0
    in_flight: int = 0
    dead: int = 0
    delivered: int = 0
    oldest_pending_age: float | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    in_flight_here: int = 0
    """Leases held by this outbox instance and not yet resolved: what ``close()`` waits for
    (``in_flight`` also counts other processes' leases of a shared queue)."""
    spilled: int = 0
    """Messages waiting in the local spill file for the primary queue to take them again
    (already included in ``pending``)."""
    spilled_oldest_age: float | None = None
    """Seconds the oldest spilled message has waited (never negative), or None."""

    def to_dict(self) -> dict[str, object]:
        return {
            "pending": self.pending,
            "in_flight": self.in_flight,
            "in_flight_here": self.in_flight_here,
            "spilled": self.spilled,
            "spilled_oldest_age": self.spilled_oldest_age,
            "dead": self.dead,
            "delivered": self.delivered,
            "oldest_pending_age": self.oldest_pending_age,
            "dropped": dict(self.dropped),
        }


Done = Callable[[BaseException | None], object]
"""What ``Outbox.put_soon`` calls when the put is durable (None) or failed (the error)."""


@runtime_checkable
class Outbox(Protocol):
    """Per-destination delivery state for queued messages.

    ``destination`` is a registered destination's name; ``now`` is ``clock.wall()`` (wall
    time, so several processes sharing a durable outbox agree on it). A queue stamps what it
    stores with ``clock.wall()`` too, reads a stored retry not-before time through
    ``bound_due``, and never reports a negative age.

    The optional capabilities (``shared_state``, ``after_fork``, ``pending_messages``,
    ``maintain``) have no-op defaults here, so the engine calls them on any outbox without
    probing; an outbox subclasses this protocol explicitly to inherit them.
    """

    durable: bool

    def put(self, message: Message) -> None:
        """Queue for every destination in ``message.destinations``; durable on return if
        ``durable``. Raises QueueFullError only under the ``block`` policy's timeout."""

    def lease(self, destination: str, limit: int, now: float, lease_seconds: float) -> list[Leased]:
        """Hand out up to ``limit`` messages due at ``now``, oldest first, for ``lease_seconds``."""

    def ack(self, destination: str, ids: Sequence[int]) -> None:
        """Mark delivered."""

    def retry(self, destination: str, items: Sequence[RetryItem]) -> None:
        """Back to pending with ``item.attempt`` (default ``attempt + 1``), not before
        ``item.not_before``."""

    def dead(self, destination: str, items: Sequence[DeadItem], now: float) -> None:
        """Move to the dead-letter store with the reason."""

    def next_due(self, destination: str, now: float) -> float | None:
        """When the next lease could return something: ``now`` if anything is due, the
        earliest ``not_before`` of waiting retries, or None if nothing is pending."""

    def stats(self, now: float) -> dict[str, QueueStats]:
        """Counts per destination."""

    def dead_letters(
        self, destination: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters, newest first."""

    def replay(self, destination: str | None = None, since: float | None = None) -> int:
        """Move dead letters back to pending with a fresh attempt budget; returns how many."""

    def purge(self, destination: str | None = None, since: float | None = None,
              before: float | None = None) -> int:
        """Delete dead letters that died in ``[since, before)`` (either end open when None);
        returns how many. ``before`` is the retention clean-up: ``purge(before=now - 30d)``."""

    def close(self) -> None:
        """Release resources; what is pending stays for the next start if ``durable``."""

    # optional capabilities ---------------------------------------------------------------
    def shared_state(self) -> tuple[Any, str] | None:
        """``(redis_client, key_prefix)`` when the queue lives in Redis, so the rate-limit
        buckets and the idempotency guard can share it across processes; None otherwise."""
        return None

    def after_fork(self) -> None:
        """In a forked child: drop everything inherited from the parent (connections, locks,
        handles, buffered rows, leases), so nothing of the parent's is used here."""
        return None

    def pending_messages(self) -> int:
        """Messages this instance would lose if the process ended now (0 when durable)."""
        return 0

    def put_many(self, messages: Sequence[Message]) -> None:
        """``put`` each, in order; the durable queues write them all or none in one step
        (used to move a spill back quickly)."""
        for message in messages:
            self.put(message)

    def put_soon(self, message: Message, done: Done) -> bool:
        """Start a ``put`` for a caller that must not block (an event loop): ``done(None)``
        once the message is durable, ``done(error)`` with the ``put``'s error otherwise,
        called once, from any thread (here too). False, and ``done`` never called, when this
        queue has no such path: the caller runs ``put`` on a thread instead."""
        return False

    def put_unless_stored(self, message: Message, since: float) -> None:
        """``put``, unless an earlier attempt (one that raised MaybeStoredError at or after
        ``since``, wall clock) did store it after all."""
        self.put(message)

    def maintain(self, now: float) -> None:
        """Housekeeping, called by the engine about once a second from its own thread:
        drain a spill, reclaim the leases of dead processes, recreate lost Redis state.
        Never raises for a queue that is down; it logs and tries again next time."""
        return None

    def hold_mark(self, destination: str) -> HoldMark | None:
        """The destination's hold mark, or None when it has never been held."""
        return None

    def set_hold_mark(self, destination: str, state: str, now: float,
                      expect: tuple[str | None, ...]) -> HoldMark | None:
        """Move the mark to ``state`` if its current state (None: no mark) is in ``expect``,
        atomically for every process; returns the mark as it is afterwards (None: still
        none). A new mark's ``since`` is ``now``; a changed one keeps its ``since``."""
        raise _no_hold("keep a hold mark")

    def purge_pending(self, destination: str, before: float | None, now: float) -> int:
        """Delete the destination's copies that wait (not leased by a live process) and
        entered the queue before ``before`` (every one when None); returns how many. The
        other destinations' copies of the same messages are untouched."""
        raise _no_hold("purge held copies")
