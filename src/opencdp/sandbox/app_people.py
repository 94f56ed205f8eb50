"""Customer.io App API reads: people search, batch attributes and the activity log.

``POST /v1/customers`` (search with an audience filter), ``GET /v1/customers?email=``,
``POST /v1/customers/attributes`` and ``GET /v1/activities``, answered from what the
sandbox's Customer.io side stored through the Track API, so a workspace seeded with calls can
be read back the way ``opencdp import --from-customerio`` reads a real one.

Where the spec leaves things open, the emulation takes the reading that catches a client's
mistakes rather than hides them:

- ``limit`` above the documented maximum, or below 1, is a 400 (the real API may clamp).
- ``next`` is an opaque keyset token: people are listed in ``cio_id`` order (the order they
  were created in), activities newest first by ``(timestamp, id)``. A token stays valid while
  the workspace changes, so a client resuming from one sees every person created after it
  and none twice; the last page answers ``"next": ""``.
- Attribute values come back as strings ("Attributes are all stored as strings"): numbers in
  their JSON form, booleans ``"true"``/``"false"``, objects and lists as JSON text. Device
  attributes too. ``timestamps`` (deprecated) is left out: the store does not know when an
  attribute was set. Relationships live in the store as a ``cio_relationships`` attribute;
  the App API lists them elsewhere, so they are not among the attributes.
- An event stored through the Track API is an activity of its type (``event``, ``page``,
  ``screen``) with its own id and timestamp; its data is the activity's ``data``. The sandbox
  keeps every activity: the 30-day horizon of the real log is not emulated.
- In strict mode these endpoints answer 429 above 10 requests/s (a sliding second shared by
  all of them), without a ``Retry-After``: none is documented.

Every request is logged (arrival on the monotonic clock, method, path, status) in
``state.app_reads``, which the admin API serves at ``/_sandbox/app_reads``, so a test can
measure a client's rate where it counts: at the server.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_right
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

from .http import Reject, Request, Response, error_response, json_response
from .state import State
from .store import Person, ServiceStore, event_id
from .track import auth_hint
from .validate import check_obj

__all__ = ["APP_READ_LIMIT", "PATHS", "AppPeopleAPI", "reads_json"]

APP_READ_LIMIT: Final = 10.0
PATHS: Final = frozenset({"/v1/customers", "/v1/customers/attributes", "/v1/activities"})
SEARCH_LIMIT: Final = (50, 1000)  # default, maximum
ACTIVITY_LIMIT: Final = (10, 100)
BATCH_IDS: Final = 100
ID_TYPES: Final = ("id", "email", "phone", "cio_id")
OPERATORS: Final = ("eq", "exists")
MAX_FILTER_DEPTH: Final = 3
HIDDEN_ATTRS: Final = frozenset({"cio_relationships", "_update", "_timestamp"})
_TRUE: Final = frozenset({"true", "1"})

Filter = Callable[[Person], bool]


def reads_json(state: State) -> dict[str, Any]:
    """The request log as the admin API serves it."""
    return {"limit_per_second": APP_READ_LIMIT if state.config.strict else None,
            "requests": [{"t": t, "method": m, "path": p, "status": s}
                         for t, m, p, s in state.app_reads]}


def text(value: Any) -> str:
    """A stored value as Customer.io returns attributes: always a string."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    return orjson.dumps(value).decode()


def _texts(values: dict[str, Any]) -> dict[str, str]:
    return {k: text(v) for k, v in values.items() if v is not None and k not in HIDDEN_ATTRS}


def identifiers(person: Person) -> dict[str, Any]:
    return {"email": person.email, "id": person.id, "cio_id": person.cio_id}


def _token(kind: str, *parts: object) -> str:
    raw = orjson.dumps([kind, *parts])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(value: str, kind: str, arity: int) -> list[Any]:
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        parts = None
    if (type(parts) is not list or len(parts) != arity + 1 or parts[0] != kind):
        raise Reject(400, "invalid_start", "start is not a `next` token of this endpoint",
                     "start")
    return parts[1:]


def _query(req: Request) -> dict[str, str]:
    """Each parameter's last value; a repeated one is the client's problem, not a 400."""
    return {k: v[-1] for k, v in parse_qs(req.query.decode("latin-1"),
                                           keep_blank_values=True).items()}


def _limit(query: dict[str, str], default: int, maximum: int) -> int:
    raw = query.get("limit")
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise Reject(400, "invalid_limit", f"limit must be an integer from 1 to {maximum}",
                     "limit")
    return int(raw)


def _id_type(query: dict[str, str]) -> str:
    kind = query.get("id_type", "id")
    if kind not in ID_TYPES:
        raise Reject(400, "invalid_enum", "id_type must be one of id, email, phone, cio_id",
                     "id_type")
    return kind


def _find(st: ServiceStore, kind: str, value: str) -> Person | None:
    if kind == "cio_id" and value.startswith("cio_"):
        value = value[4:]
    return st.find(kind, value)


# --- audience filters -----------------------------------------------------------------------

def _field(person: Person, name: str) -> Any:
    if name in ("id", "email", "cio_id", "phone"):
        return getattr(person, name)
    return person.attributes.get(name)


def compile_filter(node: Any, depth: int = 0, where: str = "filter") -> Filter:
    """The audience filter as a predicate; ``Reject`` 400 for anything outside the grammar
    (one key per object: ``and``/``or`` lists, ``not``, ``segment``, ``attribute``)."""
    if type(node) is not dict or len(node) != 1:
        raise Reject(400, "invalid_filter", f"{where} must be an object with exactly one of "
                     "and, or, not, segment, attribute", where)
    ((key, value),) = node.items()
    at = f"{where}.{key}"
    if key in ("and", "or", "not"):
        if depth >= MAX_FILTER_DEPTH:
            raise Reject(400, "invalid_filter", f"{at}: filters nest at most "
                         f"{MAX_FILTER_DEPTH} groups deep", at)
        if key == "not":
            inner = compile_filter(value, depth + 1, at)
            return lambda p: not inner(p)
        if type(value) is not list or not value:
            raise Reject(400, "invalid_filter", f"{at} must be a non-empty list", at)
        parts = [compile_filter(v, depth + 1, f"{at}[{i}]") for i, v in enumerate(value)]
        if key == "and":
            return lambda p: all(f(p) for f in parts)
        return lambda p: any(f(p) for f in parts)
    if key == "segment":
        seg = check_obj(value, at).get("id")
        if type(seg) is not int:
            raise Reject(400, "invalid_filter", f"{at}.id must be an integer segment id",
                         f"{at}.id")
        wanted = str(seg)
        return lambda p: wanted in p.segments
    if key == "attribute":
        attr = check_obj(value, at)
        name, op = attr.get("field"), attr.get("operator")
        if type(name) is not str or not name:
            raise Reject(400, "invalid_filter", f"{at}.field is required", f"{at}.field")
        if op not in OPERATORS:
            raise Reject(400, "invalid_filter", f"{at}.operator must be eq or exists",
                         f"{at}.operator")
        if op == "exists":
            return lambda p: _field(p, name) not in (None, "")
        wanted_value = attr.get("value")
        if wanted_value is None or type(wanted_value) in (dict, list):
            raise Reject(400, "invalid_filter", f"{at}.value is required for eq",
                         f"{at}.value")
        want = text(wanted_value)
        if name == "email":
            want = want.lower()
            return lambda p: p.email is not None and p.email.lower() == want
        return lambda p: (v := _field(p, name)) is not None and text(v) == want
    raise Reject(400, "invalid_filter", f"{where}: unknown key {key!r}; use and, or, not, "
                 "segment or attribute", where)


# --- the endpoints --------------------------------------------------------------------------

class AppPeopleAPI:
    """Routes ``PATHS`` (App API key as a Bearer token)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._activities: tuple[tuple[int, ...], list[tuple[int, str]], list[Any]] | None = None

    @staticmethod
    def owns(path: str) -> bool:
        return path in PATHS

    def handle(self, req: Request) -> Response:
        arrived = self.state.clock.monotonic()
        response = self._handle(req, arrived)
        self.state.app_reads.append((arrived, req.method, req.path, response[0]))
        return response

    def _handle(self, req: Request, now: float) -> Response:
        state = self.state
        st = state.store.customerio
        allowed = "GET, POST" if req.path == "/v1/customers" else (
            "POST" if req.path == "/v1/customers/attributes" else "GET")
        if req.method not in allowed.split(", "):
            r = Reject(405, "method_not_allowed", f"{req.method} is not allowed on {req.path}",
                       headers=[(b"allow", allowed.encode())])
            st.reject(r.reason)
            return error_response(req.path, r)
        cfg = state.config
        scheme, _, token = (req.authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or token.strip() != cfg.app_key:
            st.reject("unauthorized")
            hint = auth_hint(req.authorization, site_id=cfg.site_id, track_key=cfg.track_key,
                             app_key=cfg.app_key, expects="app")
            return json_response(401, {"meta": {"error": f"Unauthorized: {hint}"}})
        if cfg.strict and state.windows["app_read"].check(now, APP_READ_LIMIT):
            st.reject("rate_limited")
            return json_response(429, {"meta": {"error": "Your request is over the "
                                                         "10-per-second limit."}})
        try:
            if req.path == "/v1/activities":
                return self._activity_log(st, req)
            if req.path == "/v1/customers/attributes":
                return self._attributes(st, req)
            if req.method == "GET":
                return self._by_email(st, req)
            return self._search(st, req)
        except Reject as r:
            st.reject(r.reason)
            return error_response(req.path, r)

    # --- people -------------------------------------------------------------------------
    @staticmethod
    def _by_email(st: ServiceStore, req: Request) -> Response:
        email = _query(req).get("email")
        if not email:
            raise Reject(400, "missing_field", "email is required", "email")
        person = st.by_email.get(email.lower())
        return json_response(200, {"results": [] if person is None else [identifiers(person)]})

    @staticmethod
    def _search(st: ServiceStore, req: Request) -> Response:
        query = _query(req)
        limit = _limit(query, *SEARCH_LIMIT)
        body = check_obj(req.json(), "body")
        if "filter" not in body:
            raise Reject(400, "missing_field", "filter is required", "filter")
        match = compile_filter(body["filter"])
        keys = list(st.by_cio)  # insertion order is creation order, so sorted by cio_id
        at = 0
        if query.get("start"):
            (after,) = _untoken(query["start"], "people", 1)
            at = bisect_right(keys, str(after))
        found: list[Person] = []
        last = None
        for key in keys[at:]:
            person = st.by_cio[key]
            last = key
            if match(person):
                found.append(person)
                if len(found) == limit:
                    break
        more = len(found) == limit and last is not None and last != keys[-1]
        return json_response(200, {
            "identifiers": [identifiers(p) for p in found],
            "ids": [p.id or "" for p in found],
            "next": _token("people", last) if more else "",
        })

    @staticmethod
    def _attributes(st: ServiceStore, req: Request) -> Response:
        kind = _id_type(_query(req))
        body = check_obj(req.json(), "body")
        ids = body.get("ids")
        if type(ids) is not list or not 1 <= len(ids) <= BATCH_IDS:
            raise Reject(400, "invalid_ids", f"ids must be a list of 1 to {BATCH_IDS} "
                         "strings", "ids")
        customers = []
        for i, value in enumerate(ids):
            if type(value) is not str or not value:
                raise Reject(400, "invalid_ids", f"ids[{i}] must be a non-empty string", "ids")
            person = _find(st, kind, value)
            if person is not None:
                customers.append({"customer": customer(person, value)})
        return json_response(200, {"customers": customers})

    # --- activities ---------------------------------------------------------------------
    def _log(self, st: ServiceStore) -> tuple[list[tuple[int, str]], list[Any]]:
        """Every stored event as ``(-timestamp, id)`` keys (ascending = newest first) and
        ``(person, event)`` rows; rebuilt only when the store has changed."""
        version = (id(st), st.events, st.accepted, len(st.by_cio))
        cached = self._activities
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        rows = [((-e[2], event_id(e[1])), p, e)
                for p in st.by_cio.values() for e in p.events]
        rows.sort(key=lambda r: r[0])
        keys = [r[0] for r in rows]
        table = [(r[1], r[2]) for r in rows]
        self._activities = (version, keys, table)
        return keys, table

    def _activity_log(self, st: ServiceStore, req: Request) -> Response:
        query = _query(req)
        limit = _limit(query, *ACTIVITY_LIMIT)
        kind, name = query.get("type"), query.get("name")
        deleted = query.get("deleted", "false").lower()
        if deleted not in ("true", "false"):
            raise Reject(400, "invalid_value", "deleted must be true or false", "deleted")
        only: Person | None = None
        if "customer_id" in query:
            only = _find(st, _id_type(query), query["customer_id"])
            if only is None:
                return json_response(200, {"activities": [], "next": ""})
        if deleted == "true":
            return json_response(200, {"activities": [], "next": ""})
        keys, table = self._log(st)
        at = 0
        if query.get("start"):
            ts, eid = _untoken(query["start"], "activities", 2)
            if type(ts) is not int or type(eid) is not str:
                raise Reject(400, "invalid_start", "start is not a `next` token of this "
                             "endpoint", "start")
            at = bisect_right(keys, (-ts, eid))
        out = []
        last = None
        for index in range(at, len(table)):
            person, event = table[index]
            last = index
            etype = event[4]
            if (kind is not None and etype != kind) or (name is not None and event[0] != name) \
                    or (only is not None and person is not only):
                continue
            out.append(activity(person, event))
            if len(out) == limit:
                break
        more = len(out) == limit and last is not None and last < len(table) - 1
        nxt = ""
        if more and last is not None:
            nxt = _token("activities", -keys[last][0], keys[last][1])
        return json_response(200, {"activities": out, "next": nxt})


def customer(person: Person, referenced: str) -> dict[str, Any]:
    """The ``customer`` object of ``getPeopleById`` / ``getPersonAttributes``."""
    attributes = _texts(person.attributes)
    attributes["cio_id"] = person.cio_id
    for name in ("id", "email"):
        value = getattr(person, name)
        if value is not None:
            attributes[name] = value
    unsubscribed = person.attributes.get("unsubscribed")
    devices = []
    for device in person.devices.values():
        item: dict[str, Any] = {"id": device["id"], "platform": device["platform"]}
        if device.get("last_used") is not None:
            item["last_used"] = device["last_used"]
        item["attributes"] = _texts(device.get("attributes") or {})
        devices.append(item)
    return {
        "id": person.id if person.id is not None else referenced,
        "identifiers": identifiers(person),
        "attributes": attributes,
        "unsubscribed": unsubscribed is True or (unsubscribed is not None
                                                 and text(unsubscribed).lower() in _TRUE),
        "devices": devices,
    }


def activity(person: Person, event: Any) -> dict[str, Any]:
    name, eid, ts, data, etype = event
    item: dict[str, Any] = {
        "id": event_id(eid),
        "type": etype,
        "timestamp": ts,
        "customer_id": person.id,
        "customer_identifiers": identifiers(person),
    }
    item["url" if etype == "page" else "name"] = name
    if isinstance(data, dict) and data:
        item["data"] = data
    return item

