"""Customer.io Track API v1 and v2, as the spec and the published OpenAPI describe them.

Answers follow the real service: v1 errors ``{"meta": {"errors": [...]}}`` (merge:
``{"meta": {"error": ...}}``), v2 errors ``{"errors": [{reason, field, message}]}``, and a
batch with some bad operations is a 207 listing them by ``batch_index`` while every other
operation is applied. Sizes over the v2 request limits (entity 32 KB, batch 500 KB) are
answered 413; an operation over 32 KB inside a batch is one 207 error.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

from .http import Reject, Request, Response, json_response
from .state import State
from .store import Person, ServiceStore
from .validate import (
    E164,
    MS_THRESHOLD,
    ULID_RE,
    check_attributes,
    check_event_name,
    check_id,
    check_obj,
    check_relationships,
    check_str,
    check_timestamp,
    check_v1_relationships,
    require,
)

__all__ = ["TrackAPI", "auth_hint"]

ENTITY_LIMIT: Final = 32 * 1024
BATCH_LIMIT: Final = 500 * 1024
EVENT_DATA_LIMIT: Final = 100_000
SEGMENT_IDS_LIMIT: Final = 1000
V1_PREFIX: Final = len("/api/v1/customers/")
PERSON_IDS: Final = ("id", "email", "phone", "cio_id")
MERGE_IDS: Final = ("id", "email", "cio_id")
PLATFORMS: Final = ("ios", "android")
EVENT_TYPES: Final = ("event", "page", "screen")
DELIVERY_METRICS: Final = ("opened", "converted", "delivered")
V1_METRICS: Final = ("sent", "delivered", "opened", "clicked", "converted", "bounced",
                     "dropped", "spammed", "failed", "undeliverable", "deferred")
_EMPTY: Final = b"{}"
_JSON: Final = [(b"content-type", b"application/json")]


# Event data keys the spec declares, with their types, per event type.
DECLARED: Final[dict[str, dict[str, type]]] = {
    "event": {"recipient": str, "from_address": str, "reply_to": str},
    "page": {"path": str, "referrer": str, "search": str, "title": str, "url": str,
             "keywords": list, "recipient": str, "from_address": str, "reply_to": str},
    "screen": {"recipient": str, "from_address": str, "reply_to": str},
}
DECLARED_KEYS: Final = frozenset(k for keys in DECLARED.values() for k in keys)


def _check_declared(data: dict[str, Any], etype: str, field: str) -> None:
    for key, kind in DECLARED.get(etype, DECLARED["event"]).items():
        value = data.get(key)
        if value is not None and type(value) is not kind:
            raise Reject(400, "invalid_type", f"{field}.{key} must be a "
                         f"{'list' if kind is list else 'string'}", f"{field}.{key}")


def auth_hint(authorization: str | None, *, site_id: str, track_key: str, app_key: str,
              expects: str) -> str:
    """Explain a 401 without echoing any secret: name the classic key mix-ups."""
    if not authorization:
        return "missing Authorization header"
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    if expects == "track":
        if scheme == "bearer":
            if value == app_key:
                return ("an App API key was sent to the Track API; Track uses HTTP Basic "
                        "auth with your site id and Track API key")
            return "the Track API uses HTTP Basic auth (site id : Track API key), not Bearer"
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return "malformed Basic credentials"
            if password == app_key:
                return ("an App API key was sent as the Track API key; Track needs the "
                        "site id and Track API key")
            if user != site_id:
                return "unknown site id"
            return "wrong Track API key for this site id"
        return "the Track API uses HTTP Basic auth (site id : Track API key)"
    # App API
    if scheme == "basic":
        return ("Track API credentials (Basic site id : key) were sent to the App API; "
                "it needs an App API key as a Bearer token")
    if scheme == "bearer":
        if value == track_key:
            return ("a Track API key was sent to the App API; transactional sends need an "
                    "App API key")
        return "invalid App API key"
    return "the App API needs 'Authorization: Bearer <App API key>'"


def _ident(raw: Any, field: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    """Exactly one identifier out of ``allowed``; returns (kind, value)."""
    if type(raw) is dict and len(raw) == 1:
        value = raw.get("id")  # the common case, checked inline: a short non-blank string
        if type(value) is str and 0 < len(value) <= 37 and not value.isspace():
            return "id", value
    if type(raw) is not dict:
        raise Reject(400, "missing_field" if raw is None else "invalid_type",
                     f"{field} is required and must be an object", field)
    if len(raw) != 1:
        raise Reject(400, "invalid_identifier",
                     f"{field} must hold exactly one of {', '.join(allowed)}", field)
    ((kind, value),) = raw.items()
    if kind not in allowed:
        hint = ""
        if kind == "anonymous_id":
            hint = " (anonymous events go to POST /api/v1/events)"
        raise Reject(400, "invalid_identifier",
                     f"{field} must hold exactly one of {', '.join(allowed)}{hint}",
                     f"{field}.{kind}")
    if kind == "id":
        return kind, check_id(value, f"{field}.id")
    value = check_str(value, f"{field}.{kind}")
    if kind == "phone" and not E164.match(value):
        raise Reject(400, "invalid_phone", f"{field}.phone must be E.164 (+ and up to 15 digits)",
                     f"{field}.phone")
    if kind == "email" and "@" not in value:
        raise Reject(400, "invalid_value", f"{field}.email is not an email address",
                     f"{field}.email")
    return kind, value


def _event_id(value: Any, field: str = "id") -> str | None:
    if value is None:
        return None
    if type(value) is not str or not ULID_RE.match(value):
        raise Reject(400, "invalid_event_id", f"{field} must be a ULID (26 Crockford base32 "
                     "characters)", field)
    return value.upper()


def _device(raw: Any, token_key: str, field: str = "device") -> dict[str, Any]:
    device = check_obj(raw, field)
    token = device.get(token_key)
    if type(token) is not str or not token:
        raise Reject(400, "missing_field", f"{field}.{token_key} is required (the push token)",
                     f"{field}.{token_key}")
    platform = device.get("platform")
    if platform not in PLATFORMS:
        raise Reject(400, "invalid_enum", f"{field}.platform must be one of ios, android",
                     f"{field}.platform")
    out: dict[str, Any] = {"id": token, "platform": platform}
    last_used = device.get("last_used")
    if last_used is not None:
        out["last_used"] = check_timestamp(last_used, f"{field}.last_used")
    attrs = device.get("attributes")
    if attrs is not None:
        out["attributes"] = check_obj(attrs, f"{field}.attributes")
    for key, value in device.items():
        if key not in out and key != token_key and key not in ("last_used", "attributes"):
            out.setdefault("attributes", {})[key] = value
    return out


class TrackAPI:
    """Routes ``/api/v1/*``, ``/api/v2/*`` and ``/unsubscribe/*`` for one sandbox."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.v2_person: dict[str, Callable[[ServiceStore, str, str, dict[str, Any], int],
                                           None]] = {
            "identify": self._v2_identify,
            "event": self._v2_event,
            "page": self._v2_event,
            "screen": self._v2_event,
            "delete": self._v2_delete,
            "add_device": self._v2_add_device,
            "delete_device": self._v2_delete_device,
            "suppress": self._v2_suppress,
            "unsuppress": self._v2_unsuppress,
            "add_relationships": self._v2_relationships,
            "delete_relationships": self._v2_relationships,
        }

    # --- entry ----------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        state = self.state
        st = state.store.customerio
        v2 = req.path.startswith("/api/v2/")
        if req.path.startswith("/unsubscribe/"):
            return self._guard(st, req, v2, self._unsubscribe)
        if req.authorization != state.track_auth:
            return self._unauthorized(st, req, v2)
        wait = state.windows["track"].check(time.monotonic(), state.rate_limit("customerio"))
        if wait:
            st.reject("rate_limited")
            retry = str(max(1, round(wait + 0.4999))).encode()
            msg = "rate limit exceeded: too many requests per second for this workspace"
            body = ({"errors": [{"reason": "rate_limited", "message": msg}]} if v2
                    else {"meta": {"errors": [msg]}})
            return json_response(429, body, [(b"retry-after", retry)])
        if v2:
            return self._guard(st, req, True, self._v2)
        return self._guard(st, req, False, self._v1)

    def _guard(self, st: ServiceStore, req: Request, v2: bool,
               fn: Callable[[ServiceStore, Request], Response]) -> Response:
        try:
            return fn(st, req)
        except Reject as r:
            st.reject(r.reason)
            if v2:
                err: dict[str, Any] = {"reason": r.reason, "message": r.message}
                if r.field:
                    err["field"] = r.field
                return json_response(r.status, {"errors": [err]})
            return json_response(r.status, {"meta": {"errors": [r.message]}})

    def _unauthorized(self, st: ServiceStore, req: Request, v2: bool) -> Response:
        cfg = self.state.config
        hint = auth_hint(req.authorization, site_id=cfg.site_id, track_key=cfg.track_key,
                         app_key=cfg.app_key, expects="track")
        st.reject("wrong_key_type" if "App API key" in hint else "unauthorized")
        msg = f"Unauthorized request: {hint}"
        body = ({"errors": [{"reason": "unauthorized", "message": msg}]} if v2
                else {"meta": {"error": msg}})
        return json_response(401, body, [(b"www-authenticate", b'Basic realm="track"')])

    # --- v1 -------------------------------------------------------------------------------
    def _v1(self, st: ServiceStore, req: Request) -> Response:
        path, method = req.path, req.method
        if path.startswith("/api/v1/customers/"):
            seg = req.split(V1_PREFIX)
            if not seg or not seg[0]:
                raise Reject(404, "not_found", "no such endpoint")
            ident = seg[0]
            rest = seg[1:]
            if not rest:
                if method == "PUT":
                    return self._v1_identify(st, ident, req)
                if method == "DELETE":
                    return self._v1_delete(st, ident)
            elif rest == ["events"] and method == "POST":
                return self._v1_event(st, ident, req)
            elif rest == ["devices"] and method == "PUT":
                return self._v1_add_device(st, ident, req)
            elif len(rest) == 2 and rest[0] == "devices" and method == "DELETE":
                return self._v1_delete_device(st, ident, rest[1])
            elif rest == ["suppress"] and method == "POST":
                return self._v1_suppress(st, ident, True)
            elif rest == ["unsuppress"] and method == "POST":
                return self._v1_suppress(st, ident, False)
            raise Reject(404, "not_found", f"no such endpoint: {method} {path}")
        if path == "/api/v1/events" and method == "POST":
            return self._v1_anonymous(st, req)
        if path == "/api/v1/merge_customers" and method == "POST":
            return self._v1_merge(st, req)
        if path == "/api/v1/metrics" and method == "POST":
            return self._v1_metric(st, req, "metric")
        if path == "/api/v1/push/events" and method == "POST":
            return self._v1_metric(st, req, "event")
        if path == "/api/v1/accounts/region" and method == "GET":
            return json_response(200, {"url": self.state.base_url, "region": "us",
                                       "environment_id": 1})
        if path.startswith("/api/v1/segments/") and method == "POST":
            return self._v1_segment(st, req)
        raise Reject(404, "not_found", f"no such endpoint: {method} {path}")

    def _ok(self, st: ServiceStore, n: int = 1) -> Response:
        st.accepted += n
        return 200, _EMPTY, _JSON

    def _v1_person(self, st: ServiceStore, ident: str) -> Person | None:
        if ident.startswith("cio_"):
            return st.find("cio_id", ident[4:])
        check_id(ident, "identifier")
        person = st.find("id", ident)
        if person is None and "@" in ident:
            person = st.find("email", ident)
        return person

    def _v1_person_or_new(self, st: ServiceStore, ident: str) -> Person:
        person = self._v1_person(st, ident)
        if person is not None:
            return person
        if ident.startswith("cio_"):
            raise Reject(400, "not_found", f"no person with cio_id {ident[4:]!r}", "identifier")
        return st.create("email" if "@" in ident else "id", ident)

    def _v1_identify(self, st: ServiceStore, ident: str, req: Request) -> Response:
        body = req.json()
        attrs = check_attributes({} if body is None else body, "")
        if attrs.get("cio_relationships") is not None:
            check_v1_relationships(attrs["cio_relationships"])
        if attrs.get("_update") is True and self._v1_person(st, ident) is None:
            st.ignore("update_only_no_person")
            return 200, _EMPTY, _JSON
        person = self._v1_person_or_new(st, ident)
        self._identify(st, person, attrs)
        return self._ok(st)

    def _identify(self, st: ServiceStore, person: Person, attrs: dict[str, Any]) -> None:
        if person.suppressed:
            st.ignore("suppressed_person")
            return
        for key, value in attrs.items():
            if key not in ("_update", "_timestamp", "cio_relationships"):
                person.attributes[key] = value
        if "id" in attrs or "email" in attrs or "phone" in attrs:
            st.set_identifiers(person, attrs)

    def _v1_delete(self, st: ServiceStore, ident: str) -> Response:
        person = self._v1_person(st, ident)
        if person is not None:
            st.delete(person)
        return self._ok(st)

    def _event_body(self, body: Any) -> tuple[str, str | None, int, Any, str]:
        body = check_obj(body, "body")
        name = check_event_name(body.get("name"))
        eid = _event_id(body.get("id"))
        etype = body.get("type", "event")
        if etype not in EVENT_TYPES:
            raise Reject(400, "invalid_enum", "type must be one of event, page, screen", "type")
        ts = body.get("timestamp")
        ts = int(time.time()) if ts is None else check_timestamp(ts, "timestamp")
        data = body.get("data")
        if data is None:
            data = {}
        else:
            check_obj(data, "data")
            if not DECLARED_KEYS.isdisjoint(data):
                _check_declared(data, etype, "data")
        return name, eid, ts, data, etype

    def _dedup(self, st: ServiceStore, eid: str | None) -> bool:
        if eid is None:
            return False
        if eid in st.event_ids:
            st.duplicates += 1
            return True
        st.event_ids.add(eid)
        return False

    def _v1_event(self, st: ServiceStore, ident: str, req: Request) -> Response:
        if len(req.body) > EVENT_DATA_LIMIT and len(orjson.dumps(
                (req.json() or {}).get("data"))) > EVENT_DATA_LIMIT:
            raise Reject(400, "limit_exceeded", f"data is larger than {EVENT_DATA_LIMIT} bytes",
                         "data")
        name, eid, ts, data, etype = self._event_body(req.json())
        person = self._v1_person_or_new(st, ident)
        if self._dedup(st, eid):
            return 200, _EMPTY, _JSON
        self._add_event(st, person, name, eid, ts, data, etype)
        return self._ok(st)

    def _add_event(self, st: ServiceStore, person: Person, name: str, eid: str | None, ts: int,
                   data: Any, etype: str) -> None:
        if person.suppressed:
            st.ignore("suppressed_person")
            return
        person.events.append((name, eid or "", ts, data, etype))
        st.events += 1

    def _v1_anonymous(self, st: ServiceStore, req: Request) -> Response:
        if len(req.body) > EVENT_DATA_LIMIT + 10_000:
            raise Reject(400, "limit_exceeded", f"data is larger than {EVENT_DATA_LIMIT} bytes",
                         "data")
        body = req.json()
        name, eid, ts, data, etype = self._event_body(body)
        anon = body.get("anonymous_id")
        if anon is not None:
            check_str(anon, "anonymous_id")
        if self._dedup(st, eid):
            return 200, _EMPTY, _JSON
        st.anonymous_events.append({"name": name, "id": eid, "timestamp": ts, "data": data,
                                    "type": etype, "anonymous_id": anon})
        st.events += 1
        return self._ok(st)

    def _v1_add_device(self, st: ServiceStore, ident: str, req: Request) -> Response:
        body = check_obj(req.json(), "body")
        device = _device(require(body, "device"), "id")
        person = self._v1_person_or_new(st, ident)
        person.devices[device["id"]] = device
        return self._ok(st)

    def _v1_delete_device(self, st: ServiceStore, ident: str, token: str) -> Response:
        person = self._v1_person(st, ident)
        if person is not None:
            person.devices.pop(token, None)
        return self._ok(st)

    def _v1_suppress(self, st: ServiceStore, ident: str, suppress: bool) -> Response:
        person = (self._v1_person_or_new(st, ident) if suppress
                  else self._v1_person(st, ident))
        if person is not None:
            person.suppressed = suppress
        return self._ok(st)

    def _v1_merge(self, st: ServiceStore, req: Request) -> Response:
        body = check_obj(req.json(), "body")
        try:
            pk, pv = _ident(body.get("primary"), "primary", MERGE_IDS)
            sk, sv = _ident(body.get("secondary"), "secondary", MERGE_IDS)
        except Reject as r:
            st.reject(r.reason)
            return json_response(400, {"meta": {"error": r.message}})
        self._merge(st, pk, pv, sk, sv)
        return self._ok(st)

    def _merge(self, st: ServiceStore, pk: str, pv: str, sk: str, sv: str) -> None:
        secondary = st.find(sk, sv)
        if secondary is None:
            return
        primary = st.find(pk, pv)
        if primary is None:
            raise Reject(400, "not_found", "the primary person must already exist", "primary")
        st.merge(primary, secondary)

    def _v1_metric(self, st: ServiceStore, req: Request, key: str) -> Response:
        """``/metrics`` needs a delivery id and a metric; the legacy ``/push/events`` declares
        no required field (its spec sample is ``{}``), so an incomplete one is acknowledged
        and ignored."""
        body = check_obj(req.json(), "body")
        legacy = key == "event"
        for name in ("delivery_id", "device_id", "recipient", "reason", "href"):
            if body.get(name) is not None:
                check_str(body[name], name)
        if body.get("timestamp") is not None:
            check_timestamp(body["timestamp"], "timestamp")
        allowed = V1_METRICS if not legacy else ("opened", "converted", "delivered")
        metric = body.get(key)
        if metric is not None and metric not in allowed:
            raise Reject(400, "invalid_enum", f"{key} must be one of {', '.join(allowed)}", key)
        if body.get("delivery_id") is None or metric is None:
            if legacy:
                st.ignore("incomplete_metric")
                return self._ok(st)
            require(body, "delivery_id")
            require(body, key)
        st.deliveries.append(body)
        return self._ok(st)

    def _v1_segment(self, st: ServiceStore, req: Request) -> Response:
        seg = req.split(len("/api/v1/segments/"))
        if len(seg) != 2 or seg[1] not in ("add_customers", "remove_customers"):
            raise Reject(404, "not_found", f"no such endpoint: {req.method} {req.path}")
        body = check_obj(req.json(), "body")
        ids = require(body, "ids")
        if type(ids) is not list:
            raise Reject(400, "invalid_type", "ids must be a list", "ids")
        if len(ids) > SEGMENT_IDS_LIMIT:
            raise Reject(400, "limit_exceeded", f"ids holds more than {SEGMENT_IDS_LIMIT}", "ids")
        return self._ok(st)

    def _unsubscribe(self, st: ServiceStore, req: Request) -> Response:
        body = check_obj(req.json(), "body")
        if "unsubscribe" in body and type(body["unsubscribe"]) is not bool:
            raise Reject(400, "invalid_type", "unsubscribe must be a boolean", "unsubscribe")
        if "unsubscribe" not in body:
            st.ignore("incomplete_unsubscribe")
            return self._ok(st)
        seg = req.split(len("/unsubscribe/"))
        st.deliveries.append({"delivery_id": seg[0] if seg else "", "metric": "unsubscribed",
                              "unsubscribe": body["unsubscribe"]})
        return self._ok(st)

    # --- v2 -------------------------------------------------------------------------------
    def _v2(self, st: ServiceStore, req: Request) -> Response:
        if req.method != "POST":
            raise Reject(405, "method_not_allowed", f"{req.method} is not allowed here")
        now = int(time.time())
        if req.path == "/api/v2/batch":
            if len(req.body) >= BATCH_LIMIT:
                raise Reject(413, "too_large",
                             f"batch request is {len(req.body)} bytes; the limit is 500 KB")
            body = check_obj(req.json(), "body")
            ops = body.get("batch")
            if type(ops) is not list:
                raise Reject(400, "missing_field" if ops is None else "invalid_type",
                             "batch is required and must be a list", "batch")
            if not ops:
                raise Reject(400, "invalid_value", "batch must not be empty", "batch")
            big = len(req.body) > ENTITY_LIMIT
            errors: list[dict[str, Any]] = []
            apply = self._v2_op
            for i, op in enumerate(ops):
                try:
                    if big and len(orjson.dumps(op)) > ENTITY_LIMIT:
                        raise Reject(400, "too_large", "an operation must be at most 32 KB")
                    apply(st, op, now)
                except Reject as r:
                    st.reject(r.reason)
                    err: dict[str, Any] = {"batch_index": i, "reason": r.reason,
                                           "message": r.message}
                    if r.field:
                        err["field"] = r.field
                    errors.append(err)
            st.accepted += len(ops) - len(errors)
            if errors:
                return json_response(207, {"errors": errors})
            return 200, _EMPTY, _JSON
        if req.path == "/api/v2/entity":
            if len(req.body) > ENTITY_LIMIT:
                raise Reject(413, "too_large",
                             f"entity request is {len(req.body)} bytes; the limit is 32 KB")
            self._v2_op(st, req.json(), now)
            return self._ok(st)
        raise Reject(404, "not_found", f"no such endpoint: {req.method} {req.path}")

    def _v2_op(self, st: ServiceStore, op: Any, now: int) -> None:
        if type(op) is not dict:
            raise Reject(400, "invalid_type", "an operation must be an object")
        typ = op.get("type")
        action = op.get("action")
        if type(action) is not str and action is not None:
            raise Reject(400, "invalid_type", "action must be a string", "action")
        if typ == "person":
            if action == "merge":
                pk, pv = _ident(op.get("primary"), "primary", MERGE_IDS)
                sk, sv = _ident(op.get("secondary"), "secondary", MERGE_IDS)
                self._merge(st, pk, pv, sk, sv)
                return
            handler = self.v2_person.get(action)  # type: ignore[arg-type]
            if handler is None:
                raise Reject(400, "missing_field" if action is None else "invalid_enum",
                             "action must be one of " + ", ".join([*self.v2_person, "merge"]),
                             "action")
            kind, value = _ident(op.get("identifiers"), "identifiers", PERSON_IDS)
            handler(st, kind, value, op, now)
        elif typ == "object":
            self._v2_object(st, op, action)
        elif typ == "delivery":
            self._v2_delivery(st, op, action)
        else:
            raise Reject(400, "missing_field" if typ is None else "invalid_enum",
                         "type must be one of person, object, delivery", "type")

    def _v2_identify(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                     now: int) -> None:
        attrs = op.get("attributes")
        attrs = {} if attrs is None else check_attributes(attrs, "attributes")
        ts = op.get("timestamp")
        if ts is not None:
            check_timestamp(ts, "timestamp")
        rel = op.get("cio_relationships")
        if rel is not None:
            check_relationships(rel, "cio_relationships")
        person = st.find(kind, value)
        if person is None:
            if attrs.get("_update") is True:
                st.ignore("update_only_no_person")
                return
            person = st.create(kind, value)
        self._identify(st, person, attrs)

    def _v2_event(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                  now: int) -> None:
        name = op.get("name")
        if type(name) is not str or not 0 < len(name) <= 25 or name.isspace() or (
                name[0] == " " or name[-1] == " "):
            name = check_event_name(name)
        eid = op.get("id")
        if eid is not None:
            eid = _event_id(eid)
        ts = op.get("timestamp")
        if ts is None:
            ts = now
        elif type(ts) is not int or not 0 <= ts < MS_THRESHOLD:
            check_timestamp(ts, "timestamp")
        data = op.get("attributes")
        if data is None:
            data = {}
        elif type(data) is not dict:
            raise Reject(400, "invalid_type", "attributes must be an object", "attributes")
        elif not DECLARED_KEYS.isdisjoint(data):
            _check_declared(data, op["action"], "attributes")
        person = st.find(kind, value) or st.create(kind, value)
        if eid is not None:
            if eid in st.event_ids:
                st.duplicates += 1
                return
            st.event_ids.add(eid)
        if person.suppressed:
            st.ignore("suppressed_person")
            return
        person.events.append((name, eid or "", ts, data, op["action"]))
        st.events += 1

    def _v2_delete(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                   now: int) -> None:
        person = st.find(kind, value)
        if person is not None:
            st.delete(person)

    def _v2_add_device(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                       now: int) -> None:
        device = _device(op.get("device"), "token")
        (st.find(kind, value) or st.create(kind, value)).devices[device["id"]] = device

    def _v2_delete_device(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                          now: int) -> None:
        device = check_obj(op.get("device"), "device")
        token = check_str(device.get("token"), "device.token")
        person = st.find(kind, value)
        if person is not None:
            person.devices.pop(token, None)

    def _v2_suppress(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                     now: int) -> None:
        (st.find(kind, value) or st.create(kind, value)).suppressed = True

    def _v2_unsuppress(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                       now: int) -> None:
        person = st.find(kind, value)
        if person is not None:
            person.suppressed = False

    def _v2_relationships(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                          now: int) -> None:
        rel = op.get("cio_relationships")
        if type(rel) is not list or not rel:
            raise Reject(400, "missing_field", "cio_relationships must be a non-empty list",
                         "cio_relationships")
        check_relationships(rel, "cio_relationships")
        person = st.find(kind, value) or st.create(kind, value)
        rels = person.attributes.setdefault("cio_relationships", [])
        if op["action"] == "add_relationships":
            rels.extend(rel)
        else:
            person.attributes["cio_relationships"] = [r for r in rels if r not in rel]

    def _v2_object(self, st: ServiceStore, op: dict[str, Any], action: Any) -> None:
        actions = ("identify", "identify_anonymous", "delete", "add_relationships",
                   "delete_relationships")
        if action not in actions:
            raise Reject(400, "invalid_enum", f"action must be one of {', '.join(actions)}",
                         "action")
        ids = check_obj(op.get("identifiers"), "identifiers")
        if "cio_object_id" in ids:
            key = ("cio", check_str(ids["cio_object_id"], "identifiers.cio_object_id"))
        else:
            type_id = ids.get("object_type_id")
            obj_id = ids.get("object_id")
            if type_id is None or obj_id is None:
                raise Reject(400, "missing_field", "identifiers needs object_type_id and "
                             "object_id (or cio_object_id)", "identifiers")
            key = (check_id(type_id, "identifiers.object_type_id"),
                   check_id(obj_id, "identifiers.object_id"))
        if action == "delete":
            st.objects.pop(key, None)
            return
        obj = st.objects.setdefault(key, {"attributes": {}, "relationships": []})
        if action in ("identify", "identify_anonymous"):
            attrs = op.get("attributes")
            if attrs is not None:
                obj["attributes"].update(check_attributes(attrs, "attributes"))
            if action == "identify_anonymous":
                obj["relationships"].append({"anonymous_id": check_str(
                    op.get("anonymous_id"), "anonymous_id")})
        rel = op.get("cio_relationships")
        if rel is not None:
            check_relationships(rel, "cio_relationships")
            if action == "delete_relationships":
                obj["relationships"] = [r for r in obj["relationships"] if r not in rel]
            else:
                obj["relationships"].extend(rel)
        elif action in ("add_relationships", "delete_relationships"):
            raise Reject(400, "missing_field", "cio_relationships is required",
                         "cio_relationships")

    def _v2_delivery(self, st: ServiceStore, op: dict[str, Any], action: Any) -> None:
        if action != "event":
            raise Reject(400, "invalid_enum", "action must be event", "action")
        ids = check_obj(op.get("identifiers"), "identifiers")
        check_str(ids.get("id"), "identifiers.id")
        if op.get("name") not in DELIVERY_METRICS:
            raise Reject(400, "invalid_enum", "name must be one of opened, converted, delivered",
                         "name")
        attrs = check_obj(op.get("attributes"), "attributes")
        check_str(attrs.get("device_token"), "attributes.device_token")
        st.deliveries.append(op)
