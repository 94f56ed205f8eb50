"""``reconcile()``: gather the evidence, compare it, return a ``ReconcileReport``."""

from __future__ import annotations

import asyncio
import inspect
import time
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigurationError
from ..health import Health
from ..outbox.base import Outbox
from .compare import compare_people, unmatched
from .report import PersonDifference, ReconcileReport
from .sources import (
    ClientSource,
    Records,
    SandboxAdmin,
    SandboxReader,
    open_queue,
    platform_counts,
    read_client,
    read_queue,
)

__all__ = ["areconcile", "reconcile"]

When = float | int | datetime | None


def _seconds(value: When, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be Unix seconds or a datetime")
    return float(value)


def _window(client: object, sandbox: object, queue: object, since: When, until: When,
            sample: object) -> tuple[float | None, float | None]:
    if client is None and sandbox is None and queue is None:
        raise ConfigurationError("reconcile needs a client, a queue or a sandbox to read")
    if client is not None and not isinstance(client, ClientSource):
        raise ConfigurationError(
            "reconcile() needs an opencdp Client or AsyncClient (anything with health() and "
            f"dead_letters()), not {type(client).__name__}")
    if sandbox is not None and not isinstance(sandbox, (str, SandboxReader)):
        raise ConfigurationError("sandbox must be a Sandbox or its admin URL, not "
                                 f"{type(sandbox).__name__}")
    if queue is not None and not isinstance(queue, (str, Outbox)):
        raise ConfigurationError(f"queue must be a URL or an outbox, not {type(queue).__name__}")
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
        raise ConfigurationError("sample must be an integer >= 0")
    start, end = _seconds(since, "since"), _seconds(until, "until")
    if start is not None and end is not None and end <= start:
        raise ConfigurationError("until must be after since")
    return start, end


def _records(queue: Outbox | str, start: float | None, end: float | None) -> Records:
    if isinstance(queue, str):
        opened = open_queue(queue)
        try:
            return read_queue(opened, start, end)
        finally:
            opened.close()
    return read_queue(queue, start, end)


def _report(records: Records | None, sandbox: SandboxReader | str | None, start: float | None,
            end: float | None, sample: int, notes: list[str], now: float) -> ReconcileReport:
    sources: list[str] = []
    differences: list[PersonDifference] = []
    unmatched_count = 0
    if records is not None:
        sources.append(records.source)
        notes = notes + records.notes
        unmatched_count, differences = unmatched(records.dead)
        pending = sum((c.pending or 0) + (c.in_flight or 0) for c in records.counts.values())
        if pending:
            notes.append(f"{pending} message(s) are still pending; run again after they are "
                         "delivered")
    platforms: dict[str, dict[str, Any]] = {}
    compared = suppressed = differing = 0
    if sandbox is not None:
        reader = (SandboxAdmin(sandbox) if isinstance(sandbox, str)
                  else SandboxAdmin(sandbox.admin_url, getattr(sandbox, "ca_file", None))
                  if hasattr(sandbox, "admin_url") else sandbox)
        platforms = platform_counts(reader.stats())
        suppressed_people = reader.suppressed() if isinstance(reader, SandboxAdmin) else []
        found = compare_people(reader.people("opencdp"),
                               reader.people("customerio") + suppressed_people, start, end)
        sources.append("sandbox")
        compared, suppressed, differing = found.compared, found.suppressed, len(found.differing)
        differences = found.differing + differences
        if suppressed:
            notes.append(f"{suppressed} person(s) are suppressed in Customer.io; OpenCDP has "
                         "no suppression, so this is not counted as a difference")
    return ReconcileReport(
        since=start, until=end, taken_at=now, sources=tuple(sources),
        counts_scope=records.scope if records is not None else "none",
        destinations=dict(records.counts) if records is not None else {},
        platforms=platforms, people_compared=compared, people_differing=differing,
        suppressed_in_customerio=suppressed, messages_unmatched=unmatched_count,
        differences=differences[:sample], differences_total=len(differences), notes=notes,
    )


def reconcile(
    client: ClientSource | None = None,
    *,
    sandbox: SandboxReader | str | None = None,
    queue: Outbox | str | None = None,
    since: When = None,
    until: When = None,
    sample: int = 20,
) -> ReconcileReport:
    """Compare what reached OpenCDP with what reached Customer.io.

    ``client`` gives counters since it started (``health()``) and its queue's dead letters
    (``dead_letters()``); ``queue`` (a URL or an outbox) gives a durable queue's counts and
    dead letters when there is no client at hand; ``sandbox`` (a running ``Sandbox`` or its
    admin URL) adds the stored data of both emulated platforms, person by person.
    ``since``/``until`` are Unix seconds or datetimes. At most ``sample`` differing people are
    listed. Blocking; from async code use ``await areconcile(...)``.
    """
    start, end = _window(client, sandbox, queue, since, until, sample)
    now = time.time()
    notes: list[str] = []
    records: Records | None = None
    if client is not None:
        records = read_client(client, start, end)
        if queue is not None:
            notes.append("the client's own queue was read; queue= was ignored")
    elif queue is not None:
        records = _records(queue, start, end)
    return _report(records, sandbox, start, end, sample, notes, now)


class _Read:
    """A client whose ``health()``/``dead_letters()`` may be coroutines, read once on the
    loop so the blocking comparison can run on a thread."""

    def __init__(self, health: Health, dead: dict[str, list[Any]]) -> None:
        self._health = health
        self._dead = dead

    def health(self) -> Health:
        return self._health

    def dead_letters(self, destination: str | None = None, since: float | None = None,
                     limit: int = 100) -> list[Any]:
        return self._dead.get(destination or "", [])[:limit]


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def areconcile(
    client: ClientSource | None = None,
    *,
    sandbox: SandboxReader | str | None = None,
    queue: Outbox | str | None = None,
    since: When = None,
    until: When = None,
    sample: int = 20,
) -> ReconcileReport:
    """``reconcile`` for async code: the client is read on the loop (awaiting its calls if
    they are coroutines); queue and sandbox reads run on a worker thread."""
    start, _ = _window(client, sandbox, queue, since, until, sample)
    read: _Read | None = None
    if client is not None:
        health = await _maybe(client.health())
        if not isinstance(health, Health):
            raise ConfigurationError(f"{type(client).__name__}.health() did not give Health")
        dead = {name: list(await _maybe(client.dead_letters(name, start, 10_000)))
                for name in health.destinations}
        read = _Read(health, dead)
    return await asyncio.to_thread(reconcile, read, sandbox=sandbox,
                                   queue=queue, since=since,
                                   until=until, sample=sample)
