"""What ``reconcile`` found, as plain data that renders to JSON or to a text table.

Only attribute *names* and counts go into a report, never values: it is meant to be pasted
into tickets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

__all__ = ["DestinationCounts", "PersonDifference", "ReconcileReport"]


@dataclass(frozen=True, kw_only=True)
class DestinationCounts:
    """Delivery counts for one destination. ``accepted`` is delivered + pending + in flight
    + dead-lettered. None where the source cannot tell (no client, no queue)."""

    destination: str
    accepted: int | None = None
    delivered: int | None = None
    pending: int | None = None
    in_flight: int | None = None
    dead_lettered: int | None = None
    dead_lettered_in_window: int | None = None
    retried: int | None = None
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``opencdp reconcile --json`` prints it)."""
        return {
            "accepted": self.accepted,
            "delivered": self.delivered,
            "pending": self.pending,
            "in_flight": self.in_flight,
            "dead_lettered": self.dead_lettered,
            "dead_lettered_in_window": self.dead_lettered_in_window,
            "retried": self.retried,
            "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
        }


@dataclass(frozen=True, kw_only=True)
class PersonDifference:
    """One person whose data differs. ``source`` is ``sandbox`` (the stored data differs) or
    ``records`` (messages dead-lettered for one destination only)."""

    id: str
    source: Literal["sandbox", "records"]
    summary: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: the person's id, where the difference was seen, and
        attribute names and counts (never values)."""
        return {"id": self.id, "source": self.source, "summary": self.summary,
                "details": self.details}


@dataclass(frozen=True, kw_only=True)
class ReconcileReport:
    """Counters have no time, so ``delivered`` and ``retried`` cover the counters' lifetime
    whatever the window, as ``counts_scope`` says; dead letters and sandbox events are
    windowed."""

    since: float | None
    until: float | None
    taken_at: float
    sources: tuple[str, ...]
    counts_scope: str
    destinations: dict[str, DestinationCounts]
    platforms: dict[str, dict[str, Any]]
    people_compared: int
    people_differing: int
    suppressed_in_customerio: int
    messages_unmatched: int
    differences: list[PersonDifference]
    differences_total: int
    notes: list[str]

    @property
    def in_sync(self) -> bool:
        """No person's stored data differs and no message reached only one platform."""
        return self.people_differing == 0 and self.messages_unmatched == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: what ``opencdp reconcile --json`` prints."""
        return {
            "in_sync": self.in_sync,
            "since": iso(self.since),
            "until": iso(self.until),
            "taken_at": iso(self.taken_at),
            "sources": list(self.sources),
            "counts_scope": self.counts_scope,
            "destinations": {k: v.to_dict() for k, v in self.destinations.items()},
            "platforms": {k: dict(v) for k, v in self.platforms.items()},
            "people_compared": self.people_compared,
            "people_differing": self.people_differing,
            "suppressed_in_customerio": self.suppressed_in_customerio,
            "messages_unmatched": self.messages_unmatched,
            "differences": [d.to_dict() for d in self.differences],
            "differences_total": self.differences_total,
            "notes": list(self.notes),
        }

    def to_text(self) -> str:
        """The text table ``opencdp reconcile`` prints."""
        lines = [f"opencdp reconcile at {iso(self.taken_at)}  "
                 f"window: {iso(self.since) or 'start'} .. {iso(self.until) or 'now'}  "
                 f"sources: {', '.join(self.sources)}"]
        if self.destinations:
            lines += ["", f"deliveries ({self.counts_scope})",
                      f"{'destination':<12} {'accepted':>9} {'delivered':>10} {'pending':>8} "
                      f"{'in_flight':>9} {'dead':>6} {'retried':>8}"]
            for name, c in self.destinations.items():
                lines.append(
                    f"{name:<12} {_n(c.accepted):>9} {_n(c.delivered):>10} {_n(c.pending):>8} "
                    f"{_n(c.in_flight):>9} {_n(c.dead_lettered):>6} {_n(c.retried):>8}")
        if self.platforms:
            lines += ["", "stored in the sandbox",
                      f"{'service':<12} {'people':>7} {'events':>7} {'devices':>8} "
                      f"{'requests':>9} {'rejected':>9} {'5xx':>5}"]
            for name, p in self.platforms.items():
                lines.append(
                    f"{name:<12} {p.get('people', 0):>7} {p.get('events', 0):>7} "
                    f"{p.get('devices', 0):>8} {p.get('requests', 0):>9} "
                    f"{p.get('rejected_total', 0):>9} {p.get('5xx', 0):>5}")
        lines.append("")
        if "sandbox" in self.sources:
            lines.append(f"people compared: {self.people_compared}, differing: "
                         f"{self.people_differing}, suppressed in Customer.io: "
                         f"{self.suppressed_in_customerio}")
        if {"client", "queue"} & set(self.sources):
            lines.append(f"messages dead-lettered for one destination only: "
                         f"{self.messages_unmatched}")
        lines.append("in sync" if self.in_sync else "NOT in sync")
        if self.differences:
            lines += ["", f"differences (showing {len(self.differences)} of "
                          f"{self.differences_total})"]
            width = max(len(d.id) for d in self.differences)
            lines += [f"  {d.id:<{width}}  [{d.source}]  {d.summary}" for d in self.differences]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")
