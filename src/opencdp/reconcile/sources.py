"""Where reconcile's evidence comes from: a client's public health and dead letters, a
durable queue, or a sandbox's admin API. All the I/O lives here.
"""

from __future__ import annotations

import inspect
import ssl
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import orjson

from ..errors import ConfigurationError, OpenCDPError
from ..health import Health
from ..outbox.base import DeadLetter, Outbox
from .compare import DESTINATIONS, within
from .report import DestinationCounts

__all__ = [
    "ClientSource",
    "Records",
    "SandboxAdmin",
    "SandboxReader",
    "open_queue",
    "read_client",
    "read_queue",
]

RECORDS_LIMIT = 10_000
PLATFORM_KEYS = ("people", "events", "devices", "requests", "accepted", "rejected_total",
                 "duplicates", "5xx")


@runtime_checkable
class ClientSource(Protocol):
    """What reconcile reads from a ``Client`` or ``AsyncClient``: public calls only."""

    def health(self) -> Health: ...

    def dead_letters(self, destination: str | None = None, since: float | None = None,
                     limit: int = 100) -> list[DeadLetter]: ...


@runtime_checkable
class SandboxReader(Protocol):
    """A running ``Sandbox`` or its admin API at a URL."""

    def stats(self) -> dict[str, Any]: ...

    def people(self, service: str) -> list[dict[str, Any]]: ...


@dataclass
class Records:
    """Delivery records from one source: counts and dead letters per destination."""

    source: str
    scope: str
    counts: dict[str, DestinationCounts]
    dead: dict[str, list[DeadLetter]]
    notes: list[str] = field(default_factory=list)


def _dead_letters(read: Any, names: Iterable[str], since: float | None, until: float | None,
                  notes: list[str]) -> dict[str, list[DeadLetter]]:
    out = {}
    for name in names:
        letters = list(read(name, since, RECORDS_LIMIT))
        if len(letters) >= RECORDS_LIMIT:
            notes.append(f"only the newest {RECORDS_LIMIT} dead letters of {name} were "
                         "compared")
        out[name] = letters if since is None and until is None else within(letters, since,
                                                                            until)
    return out


def read_client(client: ClientSource, since: float | None, until: float | None) -> Records:
    """Counters since the client started (``health()``) and its queue's dead letters."""
    health: Any = client.health()
    if not isinstance(health, Health):
        if inspect.iscoroutine(health):
            health.close()
        raise ConfigurationError(
            f"{type(client).__name__}.health() returned {type(health).__name__}, not Health; "
            "an async health() is read with `await areconcile(...)`")
    notes: list[str] = []
    dead = _dead_letters(client.dead_letters, health.destinations, since, until, notes)
    counts = {}
    for name, d in health.destinations.items():
        counts[name] = DestinationCounts(
            destination=name,
            accepted=d.delivered + d.pending + d.in_flight + d.failed,
            delivered=d.delivered, pending=d.pending, in_flight=d.in_flight,
            dead_lettered=d.failed,
            dead_lettered_in_window=(len(dead[name]) if since is not None or until is not None
                                     else None),
            retried=d.retried, by_kind={k: dict(v) for k, v in d.by_kind.items() if v},
        )
    return Records("client", "since this client started", counts, dead, notes)


def read_queue(outbox: Outbox, since: float | None, until: float | None) -> Records:
    """A durable queue's lifetime counts and its dead letters as stored now."""
    notes: list[str] = []
    stats = outbox.stats(time.time())
    dead = _dead_letters(outbox.dead_letters, DESTINATIONS, since, until, notes)
    counts = {}
    for name in DESTINATIONS:
        s = stats.get(name)
        pending, in_flight = (s.pending, s.in_flight) if s else (0, 0)
        delivered, dead_count = (s.delivered, s.dead) if s else (0, 0)
        counts[name] = DestinationCounts(
            destination=name,
            accepted=delivered + pending + in_flight + dead_count,
            delivered=delivered, pending=pending, in_flight=in_flight,
            dead_lettered=dead_count,
            dead_lettered_in_window=(len(dead[name]) if since is not None or until is not None
                                     else None),
            retried=None,
        )
    return Records("queue", "the queue's lifetime; dead letters as stored now", counts, dead,
                   notes)


def open_queue(url: str) -> Outbox:
    """Open a durable queue by URL for reading (the memory queue cannot be read from outside
    its process; a missing SQLite file is an error rather than a new empty queue)."""
    from ..outbox.command import open_for_inspection

    return open_for_inspection(url)


class SandboxAdmin:
    """The sandbox's admin API at a URL (``opencdp sandbox`` prints it as ``admin``)."""

    def __init__(self, url: str, ca_file: str | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"sandbox admin URL {url!r} must be http(s)://host:port/_sandbox")
        self.url = url.rstrip("/")
        self.timeout = timeout
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        # No proxies from the environment: the sandbox is on loopback.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))

    def __repr__(self) -> str:
        return f"SandboxAdmin({self.url!r})"

    def _get(self, path: str) -> Any:
        url = f"{self.url}{path}"
        try:
            with self._opener.open(url, timeout=self.timeout) as response:
                return orjson.loads(response.read())
        except (OSError, ValueError) as exc:
            raise OpenCDPError(f"sandbox admin GET {url}: {exc}") from None

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/stats")
        return result

    def people(self, service: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get(f"/people/{quote(service, safe='')}")
        return result

    def suppressed(self) -> list[dict[str, Any]]:
        """Customer.io's suppressed profiles (suppress deletes a profile, as Customer.io does,
        so they are not among ``people``)."""
        result: list[dict[str, Any]] = self._get("/suppressed")
        return [dict(p, suppressed=True) for p in result]


def platform_counts(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {k: (stats.get(name) or {}).get(k, 0) for k in PLATFORM_KEYS}
            for name in DESTINATIONS}
