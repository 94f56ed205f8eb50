"""A held destination, as a running client applies it (``send_to_customer_io="hold"``).

The option means "hold while the queue's mark says held": the mark lives in the queue (see
``opencdp.migrate.hold`` for why), so ``opencdp migrate rollback`` or ``finish`` run from
anywhere reaches every process sharing the queue at its next housekeeping, about a second
later, without a restart and without a gap. A client that finds no mark writes ``held`` (a
hold begins when the first process in hold mode starts); one that finds a mark obeys it,
whatever its own option says about the past: a process restarted in hold mode after a
rollback delivers, it does not hold the fleet again.

Until the mark has been read, the destination is held: a guess must never send. The copies
of a held destination keep arriving in the queue like any other; housekeeping purges those
older than ``hold_retention`` (every minute, counted, OCDP366), and, once the hold is
finished, every copy still queued (OCDP368).
"""

from __future__ import annotations

from . import clock
from .errors import OpenCDPError, OutboxError
from .logs import Log
from .outbox.base import Outbox

__all__ = ["HOLDING", "Hold"]

HOLDING = frozenset({"held", "draining", "finished"})
"""Mark states in which a client sends nothing to the destination."""

PURGE_EVERY = 60.0
"""Seconds between two retention purges: a purge reads every held copy's age."""


class Hold:
    """One destination's hold in one client: the mark's last known state and what the
    retention purge removed. Read by the lane (``holding``) and the snapshot; written only
    by housekeeping."""

    def __init__(self, destination: str, retention: float, log: Log,
                 silence: frozenset[str] = frozenset()) -> None:
        self.destination = destination
        self.retention = retention
        self.log = log
        self.silence = silence
        self.state = "held"
        self.since: float | None = None
        self.purged = 0
        """Copies this client's housekeeping purged (retention, or after finish)."""
        self._next_purge = 0.0
        self._known = False

    @property
    def holding(self) -> bool:
        return self.state in HOLDING

    def start(self, outbox: Outbox, now: float) -> None:
        """Read (or write) the mark before the first delivery; a queue that cannot answer
        leaves the destination held and housekeeping tries again."""
        try:
            self._read(outbox, now)
        except OpenCDPError as exc:
            self.log.warning(
                f"[CDP] OCDP369 the hold mark of {self.destination} cannot be read now "
                f"({exc}); its copies are held until it can")

    def maintain(self, outbox: Outbox, now: float) -> None:
        """Housekeeping: follow the mark, purge by retention, purge after finish. Raises
        ``OpenCDPError`` for the engine to count and log (OCDP369)."""
        self._read(outbox, now)
        if self.state == "finished":
            purged = outbox.purge_pending(self.destination, None, now)
            if purged:
                self.purged += purged
                self._say("OCDP368", f"the migration is finished: purged {purged} "
                          f"{self.destination} copy(ies) queued since; set "
                          "send_to_customer_io=False")
        elif self.holding and clock.monotonic() >= self._next_purge:
            self._next_purge = clock.monotonic() + PURGE_EVERY
            purged = outbox.purge_pending(self.destination, now - self.retention, now)
            if purged:
                self.purged += purged
                self._say("OCDP366", f"purged {purged} held {self.destination} copy(ies) "
                          f"queued more than hold_retention={self.retention:g} s ago "
                          "(they will never reach it)")

    def _read(self, outbox: Outbox, now: float) -> None:
        mark = outbox.hold_mark(self.destination)
        if mark is None:
            mark = outbox.set_hold_mark(self.destination, "held", now, (None,))
        if mark is None:
            raise OutboxError(f"the queue did not keep the hold mark of {self.destination}")
        before, self.state, self.since = self.state, mark.state, mark.since
        if self._known and before == mark.state:
            return
        self._known = True
        name = self.destination
        if mark.state in ("held", "draining"):
            self._say("OCDP365", f"{name} copies are held in the queue (send_to_customer_io="
                      f"'hold'): nothing is sent to {name} until `opencdp migrate rollback`; "
                      f"copies older than hold_retention={self.retention:g} s are purged")
        elif mark.state == "released":
            self._say("OCDP367", f"the hold of {name} was released (`opencdp migrate "
                      f"rollback`): its copies are delivered again; set "
                      "send_to_customer_io=True")
        else:
            self._say("OCDP368", f"the hold of {name} is finished (`opencdp migrate "
                      f"finish`): nothing is sent to it and its copies are purged; set "
                      "send_to_customer_io=False")

    def _say(self, code: str, text: str) -> None:
        if code not in self.silence:
            self.log.warning(f"[CDP] {code} {text}")
