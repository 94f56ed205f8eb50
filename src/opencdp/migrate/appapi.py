"""Reading a Customer.io workspace through the App API, for ``opencdp import --from-customerio``.

:class:`AppAPIReader` yields ``(cursor, record)`` pairs: ``record`` is a dict in the
importer's NDJSON shape (``identify``, ``device``, ``track``; ``page``/``screen`` with
``views=True``) and ``cursor`` a JSON value from which ``read(start_from=cursor)`` yields
every later record and none twice. ``record_key(cursor)`` names the record by what it is
(``person:<cio_id>``, ``device:<cio_id>:<token>``, ``event:<activity id>``), independent of
paging, for the importer's deterministic event ids.

Why search + batch attributes, not an export
--------------------------------------------
The App API offers two ways to read many people: page ``POST /v1/customers`` (an audience
filter, up to 1000 people a page, ``next`` tokens) and fetch each page's profiles with
``POST /v1/customers/attributes`` (100 a request, devices included); or create a customers
export, poll it, and download the file. The reader pages, because:

- **Resume.** A ``next`` token plus a position in its page is a cursor a checkpoint can hold;
  a crash costs at most one page. An export is one file behind a signed URL that expires
  after 15 minutes, and an interrupted import would start the export over.
- **A known format.** The spec states the JSON of every answer we read; it does not state the
  export file's format, and devices are documented only in the ``customer`` object.
- **Cost is plain.** 1 + 10 requests per 1000 people at 10 requests/s is ~900 people/s
  (an hour for three million), paced in the open; an export's build time is unknown and
  unbounded.

The cost: the search answers from a live index, so a person created during the read may be
missed (a re-run picks them up; the import is exactly-once by key), and one deleted between
the search and the batch fetch is omitted by the batch endpoint and counted as
``people_gone``.

Selection, identity and attributes
----------------------------------
- All people is the filter :data:`ALL_PEOPLE` (anyone with a ``cio_id``, ``id`` or
  ``email``): the search has no "match all". ``segment=ID`` is ``{"segment": {"id": ID}}``;
  ``filter=`` takes any audience filter (a dict or its JSON text).
- Profiles are fetched by ``cio_id``, the one identifier every person has and nobody can
  change between the search and the fetch. The spec does not say whether ``id_type=cio_id``
  values carry the ``cio_`` prefix (``/v1/activities`` requires it); the batch endpoint omits
  unknown ids instead of failing, so the reader tries both forms on its first batch and keeps
  the one that finds people.
- ``user_id`` is the person's ``id``. A person without one (a workspace that identifies by
  email) is named the way Customer.io knows them, ``"identifiers": {"email": ...}`` (else
  ``{"cio_id": ...}``), never under a made-up ``user_id``: OpenCDP's gateway names people by
  an id and refuses an email as one, so the importer refuses these records by name (OCDP356)
  rather than sending what would be dead-lettered, or inventing an id no later call would
  use. They are counted (``people_without_id``).
- A device's ``id`` is its push token: the record carries it as ``device_id`` and as
  ``apn_token`` (``ios``) or ``fcm_token`` (``android``), the call's required token. The App
  API does not say which service an iOS token belongs to; APNs is the common case, and
  either name matches the same device when platforms are compared.
- Attributes come as Customer.io returns them: strings. ``id`` (it is the ``user_id``),
  ``cio_id``, ``cio_subscription_preferences`` and the computed ``_cio_*`` ones are
  Customer.io's bookkeeping and are dropped; ``email`` stays. A device's read-only ``_*``
  attributes (``_last_status``) are dropped too. An identify's ``timestamp`` is the latest of
  the (deprecated) ``timestamps`` when the workspace still returns them.

Activities
----------
With ``activities=True`` the reader pages the workspace's log, ``GET /v1/activities?type=event``
(100 a request), after the people: one request per 100 events instead of at least one per
person with ``/v1/customers/{id}/activities`` (whose answer documents no ``next``). A
selection is applied by ``cio_id``: the set of selected people is kept in memory (about 100
bytes a person) and, on a resume past the people, rebuilt by paging the search again. Each
``event`` activity becomes a ``track`` whose ``event_id`` is the activity's id, so a re-run
sends the same id. ``views=True`` adds ``page`` and ``screen`` activities as ``page`` and
``screen`` records (the client's ``page()``/``screen()`` calls); they are off by default as
the importer's NDJSON may not take them. Customer.io guarantees only the last
:data:`ACTIVITY_GUARANTEE_DAYS` days of activity: ``report()`` says so, with the count of
older events it returned anyway.

Rate and failures
-----------------
Requests go one at a time through a token bucket at 95 % of the 10 requests/s limit with a
burst of one, so jitter on the way cannot put an eleventh request into any second the
server measures. A 429 pauses the bucket: for the ``Retry-After`` when one is sent (none is
documented), else for a jittered backoff from 0.5 s. 429s, 408s, 5xx, resets and timeouts
are retried ``max_retries`` times per request (every read is safe to repeat); then, or on any
other refusal, a named error (:class:`~opencdp.errors.AppAPIError`, OCDP360 to OCDP363) is
raised. Redirects are not followed, so the key only ever goes to the configured host.

HTTP is the standard library's ``urllib``, as reconcile's ``SandboxAdmin`` uses: the import
command is in the core package, whose only HTTP library is aiohttp (asynchronous), and a
reader that sends one request at a time at 10/s gains nothing from a pool.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import random
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import orjson

from .. import checks
from .._version import __version__
from ..config import CustomerIO
from ..errors import AppAPIAuthError, AppAPIError, ConfigurationError
from ..policies.ratelimit import TokenBucket
from ..policies.retry import parse_retry_after
from ..redaction import scrub

__all__ = [
    "ACTIVITY_GUARANTEE_DAYS",
    "ALL_PEOPLE",
    "APP_HOSTS",
    "AppAPIReader",
    "Cursor",
    "Record",
    "record_key",
]

Cursor = dict[str, Any]
Record = dict[str, Any]

# The App API hosts of ``config.CustomerIO`` (``app_url`` there), for a reader built without one.
APP_HOSTS: Final = {"us": "https://api.customer.io", "eu": "https://api-eu.customer.io"}
ALL_PEOPLE: Final[dict[str, Any]] = {"or": [
    {"attribute": {"field": "cio_id", "operator": "exists"}},
    {"attribute": {"field": "id", "operator": "exists"}},
    {"attribute": {"field": "email", "operator": "exists"}},
]}
ACTIVITY_GUARANTEE_DAYS: Final = 30
RATE_LIMIT: Final = 10.0
PACE: Final = 0.95
SEARCH_MAX: Final = 1000
BATCH_MAX: Final = 100
ACTIVITY_MAX: Final = 100
BACKOFF_BASE: Final = 0.5
BACKOFF_MAX: Final = 10.0
CURSOR_VERSION: Final = 1
DROPPED_ATTRS: Final = frozenset({"id", "cio_id", "cio_subscription_preferences"})
FILTER_KEYS: Final = ("and", "or", "not", "segment", "attribute")

log = logging.getLogger("opencdp.migrate")


def record_key(cursor: Cursor) -> str:
    """What the record at ``cursor`` is, independent of paging: ``person:<cio_id>``,
    ``device:<cio_id>:<token>``, ``event:<activity id>`` (``page:``/``screen:`` likewise)."""
    key = cursor.get("key") if isinstance(cursor, dict) else None
    if not isinstance(key, str):
        raise ConfigurationError("OCDP364 not a cursor of the App API reader",
                                 option="start_from", code="OCDP364")
    return key


class _Retry(Exception):
    """A failure worth another attempt (the answer never came, or came as 408/5xx)."""


@dataclass
class _Resume:
    phase: str
    start: str
    at: int
    key: str
    cio: str | None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, never followed: the key goes only to the configured host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _selection(segment: object, filter: object) -> dict[str, Any]:
    if segment is not None and filter is not None:
        raise ConfigurationError("give segment or filter, not both (a segment inside a "
                                 "filter is {\"and\": [{\"segment\": {\"id\": N}}, ...]})",
                                 option="segment")
    if segment is not None:
        if isinstance(segment, bool) or not isinstance(segment, int) or segment < 0:
            raise ConfigurationError(f"segment must be a segment's integer id, got "
                                     f"{checks.shown(segment)}", option="segment")
        return {"segment": {"id": segment}}
    if filter is None:
        return dict(ALL_PEOPLE)
    if isinstance(filter, (str, bytes)):
        try:
            filter = orjson.loads(filter)
        except orjson.JSONDecodeError as exc:
            raise ConfigurationError(f"filter is not valid JSON: {exc}", option="filter"
                                     ) from None
    if not isinstance(filter, Mapping) or len(filter) != 1 or next(iter(filter)) not in \
            FILTER_KEYS:
        raise ConfigurationError(
            "filter must be an App API audience filter: an object with exactly one of "
            f"{', '.join(FILTER_KEYS)} (e.g. {{\"attribute\": {{\"field\": \"plan\", "
            "\"operator\": \"eq\", \"value\": \"pro\"}}})", option="filter")
    result: dict[str, Any] = orjson.loads(orjson.dumps(filter))
    return result


def _who(identifiers: Mapping[str, Any]) -> dict[str, Any] | None:
    """How a record names its person (see "Selection, identity and attributes")."""
    def text(name: str) -> str | None:
        value = identifiers.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
        return None

    found = text("id")
    if found is not None:
        return {"user_id": found}
    for name in ("email", "cio_id"):
        found = text(name)
        if found is not None:
            return {"identifiers": {name: found}}
    return None


class AppAPIReader:
    """The people of a Customer.io workspace (and their devices and events) as import records.

    ``read(start_from=cursor)`` is a generator: requests are made as records are consumed, so
    a caller that stops early (or is killed) has spent only what it read. ``counts`` and
    ``report()`` describe what this reader has done so far.
    """

    def __init__(
        self,
        app_api_key: str,
        *,
        region: str = "us",
        app_url: str | None = None,
        segment: int | None = None,
        filter: Mapping[str, Any] | str | None = None,
        activities: bool = False,
        views: bool = False,
        page_size: int = SEARCH_MAX,
        rate: float | None = RATE_LIMIT,
        max_retries: int = 8,
        timeout: float = 30.0,
        ca_file: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        key = checks.api_key("app_api_key", app_api_key)
        region = checks.choice("region", region, tuple(APP_HOSTS))
        base = checks.root(app_url or APP_HOSTS[region], "app_url", "v1",
                           "/v1/customers (and the other paths)")
        self.selection = _selection(segment, filter)
        self._everyone = segment is None and filter is None
        self.activities = checks.flag("activities", activities)
        self.views = checks.flag("views", views)
        if self.views and not self.activities:
            raise ConfigurationError("views=True reads page and screen activities; it needs "
                                     "activities=True", option="views")
        self.page_size = checks.count("page_size", page_size, 1)
        if self.page_size > SEARCH_MAX:
            raise ConfigurationError(f"page_size is at most {SEARCH_MAX} (the search's "
                                     "maximum)", option="page_size")
        self.rate = None if rate is None else checks.number("rate", rate, unit="requests/s")
        self.max_retries = checks.count("max_retries", max_retries, 0)
        self.timeout = checks.number("timeout", timeout)
        self.url = base
        self._secrets = (key,)
        self._headers = {"Authorization": f"Bearer {key}", "Accept": "application/json",
                         "Content-Type": "application/json",
                         "User-Agent": f"opencdp/{__version__} (import --from-customerio)"}
        self._sleep, self._clock, self._wall, self._rand = sleep, clock, wall, rand
        self._bucket = TokenBucket(None if self.rate is None else self.rate * PACE, burst=1.0,
                                   clock=clock)
        host = urlsplit(base).hostname or ""
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        handlers: list[Any] = [_NoRedirect(), urllib.request.HTTPSHandler(context=context)]
        if checks.is_loopback(host):
            handlers.append(urllib.request.ProxyHandler({}))  # no proxy for a local sandbox
        self._opener = urllib.request.build_opener(*handlers)
        self._cio_prefix: bool | None = None
        self.fingerprint = hashlib.sha256(orjson.dumps(
            [self.selection, self.activities, self.views],
            option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        self.counts: dict[str, int] = dict.fromkeys((
            "people", "devices", "events", "views", "requests", "429s", "retries",
            "people_without_id", "people_gone", "events_older_than_30_days",
            "activities_outside_selection"), 0)

    @classmethod
    def from_customerio(cls, customer_io: CustomerIO, **options: Any) -> AppAPIReader:
        """A reader for the workspace of a client's ``CustomerIO`` options (its ``app_url``,
        region included, and ``app_api_key``)."""
        if not customer_io.app_api_key:
            raise ConfigurationError(
                "reading a workspace needs its App API key: CustomerIO(..., app_api_key=...) "
                "or CUSTOMERIO_APP_API_KEY", option="app_api_key")
        return cls(customer_io.app_api_key, app_url=customer_io.app_url, **options)

    def __repr__(self) -> str:
        return (f"AppAPIReader(url={self.url!r}, selection={orjson.dumps(self.selection)!r}, "
                f"activities={self.activities}, views={self.views})")

    # --- the records ------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[Cursor, Record]]:
        return self.read()

    def read(self, start_from: Cursor | None = None) -> Iterator[tuple[Cursor, Record]]:
        """Every record after ``start_from`` (all of them without one), in order: the people
        (each identify followed by its devices), then their activities. A cursor that is not
        this reader's raises ``ConfigurationError`` (OCDP364) here, before any request."""
        return self._read(self._resume(start_from))

    def _read(self, resume: _Resume | None) -> Iterator[tuple[Cursor, Record]]:
        selected: set[str] | None = None
        if resume is None or resume.phase == "people":
            # The selected people are collected on the way only when the read starts at the
            # beginning; a resumed one has seen part of them, and pages the search again.
            collect: set[str] | None = set() if (self.activities and not self._everyone
                                                 and resume is None) else None
            yield from self._people(resume, collect)
            selected, resume = collect, None
        if not self.activities:
            return
        if not self._everyone and selected is None:
            selected = self._selected()
        kinds = ["event", "page", "screen"] if self.views else ["event"]
        if resume is not None:
            kinds = kinds[kinds.index(resume.phase):]
        for kind in kinds:
            yield from self._activities(kind, resume, selected)
            resume = None

    def report(self) -> dict[str, Any]:
        """The figures for the importer's final table, and what a user must know about them."""
        notes = []
        if self.activities:
            older = self.counts["events_older_than_30_days"]
            notes.append(
                f"Customer.io guarantees only the last {ACTIVITY_GUARANTEE_DAYS} days of "
                "activity: events before that may be missing from the import"
                + (f" ({older} older event(s) were returned anyway)" if older else ""))
        if self.counts["people_without_id"]:
            notes.append(f"{self.counts['people_without_id']} people have no id in "
                         "Customer.io: OpenCDP names people by id, so an import refuses their "
                         "records (OCDP356)")
        if self.counts["people_gone"]:
            notes.append(f"{self.counts['people_gone']} people were deleted between the "
                         "search and the fetch of their profile")
        return {"source": "customerio", "url": self.url, "selection": self.selection,
                "activities": self.activities,
                "activity_guarantee_days": ACTIVITY_GUARANTEE_DAYS if self.activities
                else None,
                "counts": dict(self.counts), "notes": notes}

    def _cursor(self, phase: str, start: str, at: int, key: str, cio: str | None = None
                ) -> Cursor:
        cursor: Cursor = {"v": CURSOR_VERSION, "selection": self.fingerprint, "phase": phase,
                          "start": start, "at": at, "key": key}
        if cio is not None:
            cursor["cio"] = cio
        return cursor

    def _resume(self, cursor: Cursor | None) -> _Resume | None:
        if cursor is None:
            return None
        phases = ("people", "event", "page", "screen")
        if (not isinstance(cursor, Mapping) or cursor.get("v") != CURSOR_VERSION
                or cursor.get("phase") not in phases
                or not isinstance(cursor.get("start"), str)
                or not isinstance(cursor.get("at"), int) or isinstance(cursor.get("at"), bool)
                or not isinstance(cursor.get("key"), str)):
            raise ConfigurationError("OCDP364 start_from is not a cursor of the App API "
                                     "reader (or of an older version of it)",
                                     option="start_from", code="OCDP364")
        if cursor.get("selection") != self.fingerprint:
            raise ConfigurationError(
                "OCDP364 start_from was taken from a read with another selection (segment, "
                "filter, activities or views): resuming from it would skip or repeat "
                "records; start over, or resume with the options of the first run",
                option="start_from", code="OCDP364")
        if cursor["phase"] in ("page", "screen") and not self.views:
            raise ConfigurationError("OCDP364 start_from is past the views of a read with "
                                     "views=True", option="start_from", code="OCDP364")
        cio = cursor.get("cio")
        return _Resume(cursor["phase"], cursor["start"], cursor["at"], cursor["key"],
                       cio if isinstance(cio, str) else None)

    # --- people -------------------------------------------------------------------------
    def _search(self, start: str, limit: int) -> tuple[list[dict[str, Any]], str]:
        query: dict[str, Any] = {"limit": limit}
        if start:
            query["start"] = start
        answer = self._call("POST", "/v1/customers", query, {"filter": self.selection})
        found = answer.get("identifiers")
        nxt = answer.get("next") or ""
        if not isinstance(found, list) or not isinstance(nxt, str) or any(
                not isinstance(i, dict) or not i.get("cio_id") for i in found):
            raise self._unreadable("/v1/customers", "identifiers with a cio_id each")
        if nxt and nxt == start:
            raise self._unreadable("/v1/customers", "a next token that moves on")
        return found, nxt

    def _selected(self) -> set[str]:
        selected: set[str] = set()
        start = ""
        while True:
            found, start = self._search(start, SEARCH_MAX)
            selected.update(str(i["cio_id"]) for i in found)
            if not start or not found:
                return selected

    def _people(self, resume: _Resume | None, selected: set[str] | None
                ) -> Iterator[tuple[Cursor, Record]]:
        start = resume.start if resume else ""
        while True:
            found, nxt = self._search(start, self.page_size)
            begin, skip_through = 0, None
            if resume is not None:
                begin, skip_through = self._locate(found, resume)
                resume = None
            for first in range(begin, len(found), BATCH_MAX):
                chunk = [str(i["cio_id"]) for i in found[first:first + BATCH_MAX]]
                customers = self._profiles(chunk)
                for offset, cio in enumerate(chunk):
                    if selected is not None:
                        selected.add(cio)
                    person = customers.get(cio)
                    if person is None:
                        self.counts["people_gone"] += 1
                        continue
                    records = self._person_records(cio, person)
                    if skip_through is not None:
                        keys = [k for k, _ in records]
                        done = keys.index(skip_through) + 1 if skip_through in keys else 0
                        records = records[done:]
                        skip_through = None
                    for key, record in records:
                        if record["type"] == "identify":
                            self.counts["people"] += 1
                        else:
                            self.counts["devices"] += 1
                        yield self._cursor("people", start, first + offset, key, cio), record
            if not nxt or not found:
                return
            start = nxt

    @staticmethod
    def _locate(found: list[dict[str, Any]], resume: _Resume) -> tuple[int, str | None]:
        """Where in its page the resumed person is: the first index to read and the record
        key to skip through. A person gone from the page resumes at their position, reading
        again rather than skipping someone (the import is exactly-once by key)."""
        cios = [str(i["cio_id"]) for i in found]
        if resume.at < len(cios) and cios[resume.at] == resume.cio:
            return resume.at, resume.key
        if resume.cio in cios:
            return cios.index(resume.cio), resume.key
        return min(resume.at, len(cios)), None

    def _profiles(self, cios: list[str]) -> dict[str, dict[str, Any]]:
        """``cio_id -> customer`` for ``cios``; learns the id form on the first batch that
        finds anyone (see the module docstring)."""
        forms = [self._cio_prefix] if self._cio_prefix is not None else [False, True]
        out: dict[str, dict[str, Any]] = {}
        for prefixed in forms:
            ids = [f"cio_{c}" if prefixed else c for c in cios if c not in out]
            if not ids:
                break
            answer = self._call("POST", "/v1/customers/attributes", {"id_type": "cio_id"},
                                {"ids": ids})
            customers = answer.get("customers")
            if not isinstance(customers, list):
                raise self._unreadable("/v1/customers/attributes", "a customers list")
            for item in customers:
                person = item.get("customer") if isinstance(item, dict) else None
                if not isinstance(person, dict):
                    raise self._unreadable("/v1/customers/attributes", "customer objects")
                ids_of = person.get("identifiers") or {}
                cio = (ids_of.get("cio_id") if isinstance(ids_of, dict) else None) or (
                    person.get("attributes") or {}).get("cio_id")
                if cio is not None:
                    out[str(cio)] = person
            if out:
                self._cio_prefix = prefixed
                break
        return out

    def _person_records(self, cio: str, person: dict[str, Any]) -> list[tuple[str, Record]]:
        identifiers = person.get("identifiers")
        if not isinstance(identifiers, dict):
            identifiers = {"id": person.get("id"), "cio_id": cio}
        attributes = person.get("attributes")
        if not isinstance(attributes, dict):
            attributes = {}
        if not identifiers.get("email") and isinstance(attributes.get("email"), str):
            identifiers = {**identifiers, "email": attributes["email"]}
        who = _who({**identifiers, "cio_id": cio})
        assert who is not None  # cio is never empty
        if "user_id" not in who:
            self.counts["people_without_id"] += 1
        identify: Record = {"type": "identify", **who, "attributes": {
            k: v for k, v in attributes.items()
            if k not in DROPPED_ATTRS and not k.startswith("_cio")}}
        stamps = person.get("timestamps")
        if isinstance(stamps, dict):
            times = [v for v in stamps.values()
                     if isinstance(v, int) and not isinstance(v, bool) and v > 0]
            if times:
                identify["timestamp"] = max(times)
        records = [(f"person:{cio}", identify)]
        for device in person.get("devices") or ():
            if not isinstance(device, dict) or not isinstance(device.get("id"), str):
                continue
            platform = device.get("platform")
            record: Record = {"type": "device", **who, "device_id": device["id"],
                              "platform": platform,
                              "apn_token" if platform == "ios" else "fcm_token": device["id"]}
            last_used = device.get("last_used")
            if isinstance(last_used, int) and not isinstance(last_used, bool):
                record["last_used"] = last_used
            attrs = device.get("attributes")
            record["attributes"] = ({k: v for k, v in attrs.items() if not k.startswith("_")}
                                    if isinstance(attrs, dict) else {})
            records.append((f"device:{cio}:{device['id']}", record))
        return records

    # --- activities -------------------------------------------------------------------
    def _activities(self, kind: str, resume: _Resume | None, selected: set[str] | None
                    ) -> Iterator[tuple[Cursor, Record]]:
        start = resume.start if resume else ""
        horizon = self._wall() - ACTIVITY_GUARANTEE_DAYS * 86400
        while True:
            query: dict[str, Any] = {"type": kind, "limit": ACTIVITY_MAX}
            if start:
                query["start"] = start
            answer = self._call("GET", "/v1/activities", query)
            items = answer.get("activities")
            nxt = answer.get("next") or ""
            if not isinstance(items, list) or not isinstance(nxt, str) or any(
                    not isinstance(a, dict) for a in items):
                raise self._unreadable("/v1/activities", "an activities list")
            if nxt and nxt == start:
                raise self._unreadable("/v1/activities", "a next token that moves on")
            begin = 0
            if resume is not None:
                ids = [f"{kind}:{a.get('id')}" for a in items]
                if resume.at < len(ids) and ids[resume.at] == resume.key:
                    begin = resume.at + 1
                elif resume.key in ids:
                    begin = ids.index(resume.key) + 1
                else:
                    begin = min(resume.at, len(ids))
                resume = None
            for at in range(begin, len(items)):
                item = items[at]
                if item.get("type") != kind:
                    continue
                who = item.get("customer_identifiers")
                if not isinstance(who, dict):
                    who = {"id": item.get("customer_id")}
                if selected is not None and str(who.get("cio_id")) not in selected:
                    self.counts["activities_outside_selection"] += 1
                    continue
                record = self._activity_record(kind, item, _who(who))
                if record is None:
                    continue
                if record["timestamp"] < horizon:
                    self.counts["events_older_than_30_days"] += 1
                self.counts["events" if kind == "event" else "views"] += 1
                yield self._cursor(kind, start, at, f"{kind}:{item.get('id')}"), record
            if not nxt or not items:
                return
            start = nxt

    @staticmethod
    def _activity_record(kind: str, item: dict[str, Any], who: dict[str, Any] | None
                         ) -> Record | None:
        ts = item.get("timestamp")
        aid = item.get("id")
        if who is None or not isinstance(ts, int) or isinstance(ts, bool):
            return None
        data = item.get("data")
        properties = data if isinstance(data, dict) else {}
        record: Record
        if kind == "event":
            name = item.get("name")
            if not isinstance(name, str) or not name:
                return None
            record = {"type": "track", **who, "event": name,
                      "properties": properties, "timestamp": ts}
        else:
            field = "url" if kind == "page" else "name"
            value = item.get(field)
            if not isinstance(value, str) or not value:
                return None
            record = {"type": kind, **who, field: value,
                      "properties": properties, "timestamp": ts}
        if isinstance(aid, str) and aid:
            record["event_id"] = aid
        return record

    # --- HTTP ---------------------------------------------------------------------------
    def _unreadable(self, path: str, wanted: str) -> AppAPIError:
        return AppAPIError(f"OCDP363 Customer.io App API {path} at {self._host()} answered "
                           f"200 without {wanted}: is app_url the App API (api.customer.io "
                           "or api-eu.customer.io)?", status=200, code="OCDP363")

    def _host(self) -> str:
        return urlsplit(self.url).netloc

    def _pace(self) -> None:
        """Wait for the bucket's token (or the pause a 429 set); each wait is finite, and
        after it a token is there unless another 429 paused the bucket meanwhile."""
        for _ in range(1000):
            wait = self._bucket.take()
            if wait <= 0:
                return
            self._sleep(wait)

    def _backoff(self, attempt: int) -> float:
        """Jittered exponential: ``min(10, 0.5 * 2**(attempt-1)) * uniform(0.5, 1)``; half
        the ceiling at least, since a limit measured per second frees up only as the
        second ends."""
        ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** min(attempt - 1, 30))
        return ceiling * (0.5 + self._rand() / 2)

    def _call(self, method: str, path: str, query: Mapping[str, Any],
              body: Any = None) -> dict[str, Any]:
        url = f"{self.url}{quote(path)}" + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else orjson.dumps(body)
        throttled = failures = 0
        while True:
            self._pace()
            self.counts["requests"] += 1
            try:
                status, headers, raw = self._send(method, url, data)
            except _Retry as exc:
                status, headers, raw, failure = 0, {}, b"", str(exc)
            else:
                failure = f"HTTP {status}"
            if status == 200:
                try:
                    answer = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    answer = None
                if not isinstance(answer, dict):
                    raise self._unreadable(path, "a JSON object")
                return answer
            if status in (401, 403):
                raise AppAPIAuthError(
                    f"OCDP360 Customer.io App API refused the App API key ({status}) at "
                    f"{self._host()}: use an App API key of this workspace (Settings > API "
                    "credentials > App API keys; not the Track API key) and its region "
                    "(us: api.customer.io, eu: api-eu.customer.io)", status=status,
                    code="OCDP360")
            if status == 429:
                self.counts["429s"] += 1
                throttled += 1
                if throttled > self.max_retries:
                    raise self._exhausted(path, f"{throttled} answers 429 in a row", 429)
                after = parse_retry_after(headers.get("retry-after"), self._wall())
                delay = after if after is not None else self._backoff(throttled)
                log.info("Customer.io App API %s: 429, pausing %.2f s", path, delay)
                self._bucket.pause(delay)
                continue
            if status in (0, 408) or status >= 500:
                failures += 1
                if failures > self.max_retries:
                    raise self._exhausted(path, failure, status or None)
                self.counts["retries"] += 1
                delay = self._backoff(failures)
                log.info("Customer.io App API %s: %s, retrying in %.2f s", path, failure,
                         delay)
                self._sleep(delay)
                continue
            raise self._refused(path, status, headers, raw)

    def _exhausted(self, path: str, what: str, status: int | None) -> AppAPIError:
        return AppAPIError(f"OCDP362 Customer.io App API {path} at {self._host()} still "
                           f"failing after {self.max_retries + 1} attempts ({what}); the "
                           "read can resume from the last cursor", status=status,
                           code="OCDP362")

    def _refused(self, path: str, status: int, headers: Mapping[str, str], raw: bytes
                 ) -> AppAPIError:
        if 300 <= status < 400:
            where = urlsplit(headers.get("location") or "").hostname or "elsewhere"
            detail = (f"redirected to {where}, which is not followed (is the workspace in "
                      "the other region? region='eu' or 'us')")
        else:
            try:
                answer = orjson.loads(raw)
                meta = answer.get("meta") if isinstance(answer, dict) else None
                detail = str((meta or {}).get("error") or (meta or {}).get("errors")
                             or answer)[:300]
            except (orjson.JSONDecodeError, AttributeError):
                detail = raw[:300].decode("utf-8", "replace")
            detail = scrub(detail, self._secrets) or ""
        hint = " (check the segment id or the filter)" if path == "/v1/customers" else ""
        return AppAPIError(f"OCDP361 Customer.io App API refused {path} at {self._host()} "
                           f"({status}): {detail}{hint}", status=status, code="OCDP361")

    def _send(self, method: str, url: str, data: bytes | None
              ) -> tuple[int, Mapping[str, str], bytes]:
        # The URL is app_url (http or https, checked at construction) plus a fixed path.
        request = urllib.request.Request(url, data=data, method=method,  # noqa: S310
                                         headers=self._headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, _lower(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                exc.close()
            return exc.code, _lower(exc.headers), body
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise AppAPIError(f"OCDP361 Customer.io App API at {self._host()}: the TLS "
                                  f"certificate was not trusted ({exc.reason.verify_message})",
                                  code="OCDP361") from None
            raise _Retry(f"no answer ({type(exc.reason).__name__})") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retry(f"no answer ({type(exc).__name__})") from None


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers.items() if headers else ())}
