"""Did the data reach both platforms? Counts per destination, and people whose data differs.

This is the dual-write guide's first migration phase ("verify data reaches both platforms,
compare data quality") as an API and the ``opencdp reconcile`` command. Two kinds of
evidence, used as available:

- delivery records: the client's counters (or a durable queue's counts) say how many
  messages each destination accepted, delivered, still has pending, or dead-lettered; the
  dead letters name the messages that reached one platform and not the other.
- the stored data, when the platforms are the sandbox: both services' people are listed
  and compared (attribute keys and values, events, push devices).

Only attribute *names* and counts go into the report, never values: it is meant to be
pasted into tickets. A time window narrows what has a time: dead letters (by when their
message was accepted) and sandbox events (by their timestamp); counters have no time, so
delivered and retried cover the counters' lifetime, as ``counts_scope`` says.
"""

from __future__ import annotations

import os
import ssl
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote, urlsplit

import click
import orjson

from .errors import ConfigurationError, OpenCDPError
from .message import CUSTOMERIO, OPENCDP
from .outbox.base import DeadLetter, Outbox

if TYPE_CHECKING:
    from .client import AsyncClient, Client

__all__ = [
    "DestinationCounts",
    "PersonDifference",
    "ReconcileReport",
    "compare_person",
    "reconcile",
]

DESTINATIONS = ("opencdp", "customerio")
_LABEL = {"opencdp": "OpenCDP", "customerio": "Customer.io"}
_RECORDS_LIMIT = 10_000
_BOTH = OPENCDP | CUSTOMERIO
When = float | int | datetime | None


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
        return {"id": self.id, "source": self.source, "summary": self.summary,
                "details": self.details}


@dataclass(frozen=True, kw_only=True)
class ReconcileReport:
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
        return {
            "in_sync": self.in_sync,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "taken_at": _iso(self.taken_at),
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
        lines = [f"opencdp reconcile at {_iso(self.taken_at)}  "
                 f"window: {_iso(self.since) or 'start'} .. {_iso(self.until) or 'now'}  "
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


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


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


def _in_window(ts: float, since: float | None, until: float | None) -> bool:
    return (since is None or ts >= since) and (until is None or ts < until)


# --- comparing stored people ----------------------------------------------------------------

def _person_key(person: Mapping[str, Any]) -> str:
    if person.get("id"):
        return str(person["id"])
    if person.get("email"):
        return str(person["email"]).lower()
    return f"cio_{person.get('cio_id')}"


def _event_keys(person: Mapping[str, Any] | None, since: float | None,
                until: float | None) -> set[str]:
    keys = set()
    for event in (person or {}).get("events") or ():
        ts = event.get("timestamp")
        if isinstance(ts, (int, float)) and not _in_window(ts, since, until):
            continue
        keys.add(str(event.get("id") or f"{event.get('name')}@{ts}"))
    return keys


def _device_names(device: Mapping[str, Any]) -> set[str]:
    return {str(device[k]) for k in ("id", "deviceId", "apnToken", "fcmToken") if device.get(k)}


def compare_person(opencdp: Mapping[str, Any] | None, customerio: Mapping[str, Any] | None,
                   since: float | None = None, until: float | None = None,
                   ) -> dict[str, Any] | None:
    """How one person's records differ (sandbox person objects), or None when they agree.

    Attribute values are compared but only their names reported. Events are matched by id
    (by name and time when they have none), within the window when one is given. Devices are
    matched by id or push token; web devices are OpenCDP's alone by design and are skipped.
    The suppression flag is not compared: OpenCDP has no suppression.
    """
    if opencdp is None or customerio is None:
        if opencdp is None and customerio is None:
            return None
        missing = "opencdp" if opencdp is None else "customerio"
        present = customerio if opencdp is None else opencdp
        return {"missing_from": missing,
                "events": len(_event_keys(present, since, until)),
                "attributes": sorted((present or {}).get("attributes") or {})}
    details: dict[str, Any] = {}
    a = opencdp.get("attributes") or {}
    b = customerio.get("attributes") or {}
    attributes = {
        "only_opencdp": sorted(k for k in a if k not in b),
        "only_customerio": sorted(k for k in b if k not in a),
        "different": sorted(k for k in a.keys() & b.keys() if a[k] != b[k]),
    }
    if any(attributes.values()):
        details["attributes"] = attributes
    ea, eb = _event_keys(opencdp, since, until), _event_keys(customerio, since, until)
    if ea != eb:
        details["events"] = {"opencdp": len(ea), "customerio": len(eb),
                             "only_opencdp": len(ea - eb), "only_customerio": len(eb - ea)}
    cdp_devices = [d for d in opencdp.get("devices") or () if d.get("platform") != "web"]
    cio_devices = list(customerio.get("devices") or ())
    cdp_names = set().union(*(_device_names(d) for d in cdp_devices))
    cio_names = set().union(*(_device_names(d) for d in cio_devices))
    only_cdp = sorted(str(d.get("deviceId") or d.get("id")) for d in cdp_devices
                      if not _device_names(d) & cio_names)
    only_cio = sorted(str(d.get("id")) for d in cio_devices if not _device_names(d) & cdp_names)
    if only_cdp or only_cio:
        details["devices"] = {"only_opencdp": only_cdp, "only_customerio": only_cio}
    return details or None


def _summary(details: Mapping[str, Any]) -> str:
    if "missing_from" in details:
        missing = details["missing_from"]
        other = "customerio" if missing == "opencdp" else "opencdp"
        return (f"missing in {_LABEL[missing]} ({details['events']} event(s) in "
                f"{_LABEL[other]})")
    parts = []
    events = details.get("events")
    if events:
        for side in DESTINATIONS:
            if events[f"only_{side}"]:
                parts.append(f"{events[f'only_{side}']} event(s) only in {_LABEL[side]}")
    attrs = details.get("attributes")
    if attrs:
        for side in DESTINATIONS:
            if attrs[f"only_{side}"]:
                parts.append(f"attributes only in {_LABEL[side]}: "
                             f"{', '.join(attrs[f'only_{side}'])}")
        if attrs["different"]:
            parts.append(f"attributes differ: {', '.join(attrs['different'])}")
    devices = details.get("devices")
    if devices:
        for side in DESTINATIONS:
            if devices[f"only_{side}"]:
                parts.append(f"{len(devices[f'only_{side}'])} device(s) only in {_LABEL[side]}")
    return "; ".join(parts)


class _SandboxReader(Protocol):
    def stats(self) -> dict[str, Any]: ...

    def people(self, service: str) -> list[dict[str, Any]]: ...


class _AdminURL:
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


@dataclass
class _SandboxFindings:
    platforms: dict[str, dict[str, Any]]
    compared: int
    suppressed: int
    differing: list[PersonDifference]


_PLATFORM_KEYS = ("people", "events", "devices", "requests", "accepted", "rejected_total",
                  "duplicates", "5xx")


def _compare_sandbox(reader: _SandboxReader, since: float | None,
                     until: float | None) -> _SandboxFindings:
    stats = reader.stats()
    platforms = {name: {k: stats.get(name, {}).get(k, 0) for k in _PLATFORM_KEYS}
                 for name in DESTINATIONS}
    cdp = {_person_key(p): p for p in reader.people("opencdp")}
    cio = {_person_key(p): p for p in reader.people("customerio")}
    differing = []
    for key in sorted(cdp.keys() | cio.keys()):
        details = compare_person(cdp.get(key), cio.get(key), since, until)
        if details is not None:
            differing.append(PersonDifference(id=key, source="sandbox",
                                              summary=_summary(details), details=details))
    suppressed = sum(1 for p in cio.values() if p.get("suppressed"))
    return _SandboxFindings(platforms, len(cdp.keys() | cio.keys()), suppressed, differing)


# --- delivery records -----------------------------------------------------------------------

def _dead_in_window(outbox: Outbox, destination: str, since: float | None,
                    until: float | None, notes: list[str]) -> list[DeadLetter]:
    letters = outbox.dead_letters(destination, since, _RECORDS_LIMIT)
    if len(letters) >= _RECORDS_LIMIT:
        notes.append(f"only the newest {_RECORDS_LIMIT} dead letters of {destination} were "
                     "compared")
    if since is None and until is None:
        return letters
    return [d for d in letters if _in_window(d.message.created_ms / 1000, since, until)]


def _unmatched(dead: Mapping[str, list[DeadLetter]]) -> tuple[int, list[PersonDifference]]:
    """Messages meant for both platforms but dead-lettered for one only, grouped by person."""
    ids = {name: {d.message.id for d in letters} for name, letters in dead.items()}
    people: dict[tuple[str, str], list[DeadLetter]] = {}
    count = 0
    for name, letters in dead.items():
        other = "customerio" if name == "opencdp" else "opencdp"
        for letter in letters:
            message = letter.message
            if message.destinations & _BOTH != _BOTH or message.id in ids.get(other, ()):
                continue
            count += 1
            people.setdefault((message.identifier, name), []).append(letter)
    out = []
    for (person, name), letters in people.items():
        other = "customerio" if name == "opencdp" else "opencdp"
        reasons = sorted({d.reason for d in letters})
        kinds: dict[str, int] = {}
        for d in letters:
            kinds[d.message.kind] = kinds.get(d.message.kind, 0) + 1
        out.append(PersonDifference(
            id=person, source="records",
            summary=(f"{len(letters)} message(s) dead-lettered for {_LABEL[name]}, not for "
                     f"{_LABEL[other]}: {reasons[0][:80]}"
                     + (f" (+{len(reasons) - 1} more reasons)" if len(reasons) > 1 else "")),
            details={"missing_from": name, "messages": len(letters), "kinds": kinds,
                     "reasons": reasons[:5],
                     "message_ids": [d.message.ulid for d in letters[:10]]},
        ))
    out.sort(key=lambda d: (d.id, d.details["missing_from"]))
    return count, out


def _open_queue(url: str) -> Outbox:
    from .outbox.url import open_outbox, safe_url

    text = url.strip()
    if text.split("?")[0] == "memory":
        raise ConfigurationError("the memory queue lives inside the application's process; "
                                 "reconcile a durable queue (sqlite:///... or redis://...), "
                                 "or pass the client")
    if text.lower().startswith("sqlite:"):
        parts = urlsplit(text)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc in ("", "localhost") and path and not os.path.exists(path):
            raise ConfigurationError(f"no queue file at {path}")
    try:
        return open_outbox(text, max_queue_size=1, queue_full="drop_oldest",
                           queue_full_timeout=0.0, durability="durable")
    except ConfigurationError:
        raise
    except OpenCDPError as exc:
        raise OpenCDPError(f"cannot open {safe_url(text)}: {exc}") from None


def _client_core(client: Any) -> Any:
    core = getattr(client, "_core", None)
    if core is None or not hasattr(core, "engine"):
        raise ConfigurationError(
            f"reconcile() needs an opencdp Client or AsyncClient, not {type(client).__name__}")
    return core


def _reconcile(
    client: Client | AsyncClient | None = None,
    *,
    sandbox: _SandboxReader | str | None = None,
    queue: Outbox | str | None = None,
    since: When = None,
    until: When = None,
    sample: int = 20,
) -> ReconcileReport:
    """Compare what reached OpenCDP with what reached Customer.io.

    ``client`` gives counters since it started and its outbox's dead letters; ``queue`` (a
    URL or an outbox) gives a durable queue's counts and dead letters when there is no
    client at hand; ``sandbox`` (a running ``Sandbox`` or its admin URL) adds the stored
    data of both emulated platforms, person by person. ``since``/``until`` are Unix seconds
    or datetimes. At most ``sample`` differing people are listed.
    """
    if client is None and sandbox is None and queue is None:
        raise ConfigurationError("reconcile needs a client, a queue or a sandbox to read")
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
        raise ConfigurationError("sample must be an integer >= 0")
    start, end = _seconds(since, "since"), _seconds(until, "until")
    if start is not None and end is not None and end <= start:
        raise ConfigurationError("until must be after since")
    now = time.time()
    notes: list[str] = []
    sources: list[str] = []
    destinations: dict[str, DestinationCounts] = {}
    differences: list[PersonDifference] = []
    unmatched = 0
    scope = "none"

    core = _client_core(client) if client is not None else None
    opened: Outbox | None = None
    outbox: Outbox | None
    if core is not None:
        outbox = core.outbox
        sources.append("client")
        if queue is not None:
            notes.append("the client's own queue was read; queue= was ignored")
    elif isinstance(queue, str):
        outbox = opened = _open_queue(queue)
        sources.append("queue")
    else:
        outbox = queue
        if outbox is not None:
            sources.append("queue")
    try:
        if outbox is not None:
            names: Iterable[str] = (core.engine.destinations if core is not None
                                    else DESTINATIONS)
            stats = outbox.stats(now)
            dead = {name: _dead_in_window(outbox, name, start, end, notes) for name in names}
            for name, letters in dead.items():
                s = stats.get(name)
                pending, in_flight = (s.pending, s.in_flight) if s else (0, 0)
                lane = core.engine.lanes.get(name) if core is not None else None
                if lane is not None:
                    counters = lane.counters
                    delivered, dead_count, retried = (counters.delivered, counters.dead,
                                                      counters.retried)
                    by_kind = {k: dict(v) for k, v in counters.by_kind.items() if v}
                else:
                    delivered = s.delivered if s else 0
                    dead_count, retried, by_kind = (s.dead if s else 0), None, {}
                destinations[name] = DestinationCounts(
                    destination=name,
                    accepted=delivered + pending + in_flight + dead_count,
                    delivered=delivered, pending=pending, in_flight=in_flight,
                    dead_lettered=dead_count,
                    dead_lettered_in_window=(len(letters) if start is not None
                                             or end is not None else None),
                    retried=retried, by_kind=by_kind,
                )
            scope = ("since this client started" if core is not None
                     else "the queue's lifetime; dead letters as stored now")
            unmatched, differences = _unmatched(dead)
            pending_total = sum((d.pending or 0) + (d.in_flight or 0)
                                for d in destinations.values())
            if pending_total:
                notes.append(f"{pending_total} message(s) are still pending; run again after "
                             "they are delivered")
    finally:
        if opened is not None:
            opened.close()

    platforms: dict[str, dict[str, Any]] = {}
    compared = suppressed = differing = 0
    if sandbox is not None:
        reader = _AdminURL(sandbox) if isinstance(sandbox, str) else sandbox
        findings = _compare_sandbox(reader, start, end)
        sources.append("sandbox")
        platforms = findings.platforms
        compared, suppressed = findings.compared, findings.suppressed
        differing = len(findings.differing)
        differences = findings.differing + differences
        if suppressed:
            notes.append(f"{suppressed} person(s) are suppressed in Customer.io; OpenCDP has "
                         "no suppression, so this is not counted as a difference")
    return ReconcileReport(
        since=start, until=end, taken_at=now, sources=tuple(sources), counts_scope=scope,
        destinations=destinations, platforms=platforms, people_compared=compared,
        people_differing=differing, suppressed_in_customerio=suppressed,
        messages_unmatched=unmatched, differences=differences[:sample],
        differences_total=len(differences), notes=notes,
    )


# --- the command ----------------------------------------------------------------------------

class _ReconcileCommand(click.Command):
    """The ``opencdp reconcile`` command, which is also the Python API: the command group
    runs it through ``invoke`` like any click command, and calling it from Python,
    ``reconcile(client, sandbox=...)``, returns a ``ReconcileReport``. One name for both, as
    the command's module path ``opencdp.reconcile:reconcile`` and the API share it."""

    def __call__(
        self,
        client: Client | AsyncClient | None = None,
        *,
        sandbox: _SandboxReader | str | None = None,
        queue: Outbox | str | None = None,
        since: When = None,
        until: When = None,
        sample: int = 20,
    ) -> ReconcileReport:
        return _reconcile(client, sandbox=sandbox, queue=queue, since=since, until=until,
                          sample=sample)


@click.command(name="reconcile", cls=_ReconcileCommand)
@click.option("--queue", "queue_url", envvar="OPENCDP_QUEUE_URL", default=None, metavar="URL",
              help="A durable queue to read: sqlite:///path.db or redis://host:port/db "
                   "(default: $OPENCDP_QUEUE_URL).")
@click.option("--sandbox", "sandbox_url", default=None, metavar="ADMIN_URL",
              help="A sandbox's admin URL (http://127.0.0.1:PORT/_sandbox): compare the "
                   "people stored in both emulated platforms.")
@click.option("--sandbox-ca", default=None, metavar="FILE",
              help="CA file of a TLS sandbox (printed by `opencdp sandbox --tls`).")
@click.option("--since", default=None, metavar="WHEN",
              help="Window start: Unix seconds, ISO-8601, or an age like 30m / 12h / 7d.")
@click.option("--until", default=None, metavar="WHEN", help="Window end (default: now).")
@click.option("--sample", default=20, show_default=True, type=click.IntRange(min=0),
              help="How many differing people to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Exit with status 1 when the platforms differ.")
def reconcile(queue_url: str | None, sandbox_url: str | None, sandbox_ca: str | None,
                      since: str | None, until: str | None, sample: int, as_json: bool,
                      check: bool) -> None:
    """Compare what reached OpenCDP with what reached Customer.io.

    Per destination: messages accepted, delivered, pending and dead-lettered (from the
    queue), and a sample of people whose data differs (from the sandbox's stored data, or
    from dead letters that reached only one platform).
    """
    from .outbox.command import parse_since

    if not queue_url and not sandbox_url:
        raise click.UsageError("give --queue URL (or set OPENCDP_QUEUE_URL), --sandbox "
                               "ADMIN_URL, or both")
    try:
        start = parse_since(since)
        end = parse_since(until)
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint="--since/--until") from None
    try:
        reader = _AdminURL(sandbox_url, sandbox_ca) if sandbox_url else None
        report = _reconcile(sandbox=reader, queue=queue_url or None, since=start, until=end,
                           sample=sample)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    else:
        click.echo(report.to_text())
    if check and not report.in_sync:
        raise SystemExit(1)


reconcile.__doc__ = _reconcile.__doc__

