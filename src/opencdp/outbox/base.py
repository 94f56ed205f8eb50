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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError
from ..message import DESTINATION_BITS, Message

__all__ = [
    "DeadItem",
    "DeadLetter",
    "Leased",
    "Outbox",
    "QueueStats",
    "RetryItem",
    "destination_bit",
]


def destination_bit(destination: str) -> int:
    """The bit of a destination name, or a ConfigurationError naming the valid ones."""
    try:
        return DESTINATION_BITS[destination]
    except KeyError:
        raise ConfigurationError(
            f"unknown destination {destination!r}; expected one of {sorted(DESTINATION_BITS)}"
        ) from None


@dataclass(slots=True)
class Leased:
    """A message handed to one destination's lane, with how often it was tried there before."""

    message: Message
    attempt: int = 0
    last_error: str | None = None
    enqueued_at: float = 0.0


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

    def to_dict(self) -> dict[str, object]:
        return {
            "pending": self.pending,
            "in_flight": self.in_flight,
            "dead": self.dead,
            "delivered": self.delivered,
            "oldest_pending_age": self.oldest_pending_age,
            "dropped": dict(self.dropped),
        }


@runtime_checkable
class Outbox(Protocol):
    """Per-destination delivery state for queued messages.

    ``destination`` is ``"opencdp"`` or ``"customerio"``; ``now`` is ``time.time()`` (wall
    clock, so several processes sharing a durable outbox agree on it).
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

    def purge(self, destination: str | None = None, since: float | None = None) -> int:
        """Delete dead letters; returns how many."""

    def close(self) -> None:
        """Release resources; what is pending stays for the next start if ``durable``."""
