"""Did the data reach both platforms? Counts per destination, and people whose data differs.

This is the dual-write guide's first migration phase ("verify data reaches both platforms,
compare data quality") as an API, ``reconcile(...)``, and as the ``opencdp reconcile``
command. Two kinds of evidence, used as available:

- delivery records: the client's counters (or a durable queue's counts) say how many
  messages each destination accepted, delivered, still has pending, or dead-lettered; the
  dead letters name the messages that reached one platform and not the other.
- the stored data, when the platforms are the sandbox: both services' people are listed
  and compared (attribute keys and values, events, push devices).

A time window narrows what has a time: dead letters (by when their message was accepted)
and sandbox events (by their timestamp).

The package: ``report`` (the result types), ``compare`` (pure comparison), ``sources``
(reading a client, a queue, a sandbox), ``api`` (the function), ``command`` (the CLI).
"""

from __future__ import annotations

from .api import areconcile, reconcile
from .compare import compare_person
from .report import DestinationCounts, PersonDifference, ReconcileReport

__all__ = [
    "DestinationCounts",
    "PersonDifference",
    "ReconcileReport",
    "areconcile",
    "compare_person",
    "reconcile",
]
