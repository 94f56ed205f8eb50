"""Customer.io Track API v1 and v2, as the spec and the published OpenAPI describe them.

Answers follow the real service: v1 errors ``{"meta": {"errors": [...]}}`` (merge:
``{"meta": {"error": ...}}``), v2 errors ``{"errors": [{reason, field, message}]}``, and a
batch with some bad operations is a 207 listing them by ``batch_index`` while every other
operation is applied. Sizes over the v2 request limits (entity 32 KB, batch 500 KB) are
answered 413; an operation over 32 KB inside a batch is one 207 error.

People follow the identify rules of ``PUT /customers/{identifier}``: a body identifier that
belongs to someone updates that person; changing an ``id`` or an ``email`` needs the person
addressed as ``cio_<cio_id>``; unknown ``cio_`` ids are dropped with 200; suppressing deletes
the profile and refuses its identifiers until they are unsuppressed. Whatever is dropped is
counted in stats ``ignored`` under its reason.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

from ..message import new_ulid, ulid_str
from .http import Reject, Request, Response, error_response, json_response
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

__all__ = ["TrackAPI", "auth_hint", "basic_matches"]

ENTITY_LIMIT: Final = 32 * 1024
BATCH_LIMIT: Final = 500 * 1024
EVENT_DATA_LIMIT: Final = 100_000
SEGMENT_IDS_LIMIT: Final = 1000
PERSON_IDS: Final = ("id", "email", "phone", "cio_id")
MERGE_IDS: Final = ("id", "email", "cio_id")
PLATFORMS: Final = ("ios", "android")
EVENT_TYPES: Final = ("event", "page", "screen")
DELIVERY_METRICS: Final = ("opened", "converted", "delivered")
V1_METRICS: Final = ("bounced", "clicked", "converted", "deferred", "delivered", "dropped",
                     "opened", "spammed")
FORM_RESERVED: Final = ("form_id", "form_name", "form_type", "form_url", "form_url_param")
NO_AUTH: Final = frozenset({"metrics", "push_events", "unsubscribe"})
_EMPTY: Final = b"{}"
_JSON: Final = [(b"content-type", b"application/json")]
_NO_CONTENT: Final[Response] = (204, b"", [])


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


def _device(raw: Any, token_key: str, strict: bool, field: str = "device") -> dict[str, Any]:
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
        out["last_used"] = check_timestamp(last_used, f"{field}.last_used", strict)
    attrs = device.get("attributes")
    if attrs is not None:
        out["attributes"] = check_obj(attrs, f"{field}.attributes")
    for key, value in device.items():
        if key not in out and key != token_key and key not in ("last_used", "attributes"):
            out.setdefault("attributes", {})[key] = value
    return out


def basic_matches(authorization: str | None, expected: str) -> bool:
    """``Basic <expected>``, the scheme word in any case (HTTP auth schemes are
    case-insensitive, RFC 9110 §11.1)."""
    if not authorization:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    return scheme.lower() == "basic" and value.strip() == expected


def _v1_lookup(st: ServiceStore, ident: str) -> tuple[str, str, Person | None]:
    """A v1 path identifier's kind (from its shape, as the spec says), value and person."""
    if ident.startswith("cio_"):
        value = ident[4:]
        if not value.strip():
            raise Reject(400, "invalid_identifier", "identifier cio_ needs a cio_id after it",
                         "identifier")
        return "cio_id", value, st.by_cio.get(value)
    check_id(ident, "identifier")
    person = st.find("id", ident)
    if person is not None:
        return "id", ident, person
    if "@" in ident:
        return "email", ident, st.by_email.get(ident.lower())
    return "id", ident, None


def _body_ids(attrs: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for kind in ("id", "email"):
        value = attrs.get(kind)
        if type(value) is int and kind == "id":
            value = str(value)
        if type(value) is str and value.strip():
            out.append((kind, value))
    return out


class TrackAPI:
    """Routes ``/api/v1/*``, ``/api/v2/*`` and ``/unsubscribe/*`` for one sandbox."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.strict = state.config.strict
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
        self.v1: dict[str, Callable[[ServiceStore, Request, list[str]], Response]] = {
            "customer": self._v1_customer,
            "event": self._v1_event,
            "add_device": self._v1_add_device,
            "delete_device": self._v1_delete_device,
            "suppress": self._v1_suppress,
            "unsuppress": self._v1_unsuppress,
            "events": self._v1_anonymous,
            "merge_customers": self._v1_merge,
            "metrics": self._v1_metrics,
            "push_events": self._v1_push_events,
            "region": self._v1_region,
            "add_customers": self._v1_segment,
            "remove_customers": self._v1_segment,
            "form": self._v1_form,
            "unsubscribe": self._unsubscribe,
        }

    # --- entry ----------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        state = self.state
        st = state.store.customerio
        try:
            name, args = self._match(req)
        except Reject as r:
            st.reject(r.reason)
            return error_response(req.path, r)
        v2 = name in ("batch", "entity")
        if name not in NO_AUTH and req.authorization != state.track_auth and not basic_matches(
                req.authorization, state.track_basic):
            return self._unauthorized(st, req, v2)
        wait = state.windows["track"].check(time.monotonic(), state.rate_limit("customerio"))
        if wait:
            st.reject("rate_limited")
            retry = str(max(1, round(wait + 0.4999))).encode()
            msg = "rate limit exceeded: too many requests per second for this workspace"
            body = ({"errors": [{"reason": "rate_limited", "message": msg}]} if v2
                    else {"meta": {"errors": [msg]}})
            return json_response(429, body, [(b"retry-after", retry)])
        try:
            if v2:
                return self._v2(st, req, name)
            return self.v1[name](st, req, args)
        except Reject as r:
            st.reject(r.reason)
            if name == "merge_customers":
                return json_response(r.status, {"meta": {"error": r.message}}, r.headers)
            return error_response(req.path, r)

    def _match(self, req: Request) -> tuple[str, list[str]]:
        """The operation a path names and its path parameters; 404 for no operation, 405
        (with ``Allow``) for a method the operation does not take."""
        path = req.path
        name: str | None = None
        args: list[str] = []
        allowed: tuple[str, ...] = ("POST",)
        if path.startswith("/api/v2/"):
            if path in ("/api/v2/batch", "/api/v2/entity"):
                name = path[8:]
        elif path.startswith("/unsubscribe/"):
            seg = req.split(len("/unsubscribe/"))
            if len(seg) == 1 and seg[0]:
                name, args = "unsubscribe", seg
        elif path.startswith("/api/v1/"):
            seg = req.split(len("/api/v1/"))
            n = len(seg)
            head = seg[0] if seg else ""
            if head == "customers" and n >= 2 and seg[1]:
                rest = seg[2:]
                args = [seg[1]]
                if not rest:
                    name, allowed = "customer", ("PUT", "DELETE")
                elif rest == ["events"]:
                    name = "event"
                elif rest == ["devices"]:
                    name, allowed = "add_device", ("PUT",)
                elif len(rest) == 2 and rest[0] == "devices" and rest[1]:
                    name, allowed, args = "delete_device", ("DELETE",), [seg[1], rest[1]]
                elif rest in (["suppress"], ["unsuppress"]):
                    name = rest[0]
            elif n == 1 and head in ("events", "merge_customers", "metrics"):
                name = head
            elif seg == ["push", "events"]:
                name = "push_events"
            elif seg == ["accounts", "region"]:
                name, allowed = "region", ("GET", "HEAD")
            elif head == "segments" and n == 3 and seg[1] and seg[2] in ("add_customers",
                                                                         "remove_customers"):
                name, args = seg[2], [seg[1]]
            elif head == "forms" and n == 3 and seg[1] and seg[2] == "submit":
                name, args = "form", [seg[1]]
        if name is None:
            raise Reject(404, "not_found", f"no such endpoint: {req.method} {path}")
        if req.method not in allowed:
            raise Reject(405, "method_not_allowed",
                         f"{req.method} is not allowed on {path}; use {', '.join(allowed)}",
                         headers=[(b"allow", ", ".join(allowed).encode())])
        return name, args

    def _unauthorized(self, st: ServiceStore, req: Request, v2: bool) -> Response:
        cfg = self.state.config
        hint = auth_hint(req.authorization, site_id=cfg.site_id, track_key=cfg.track_key,
                         app_key=cfg.app_key, expects="track")
        st.reject("wrong_key_type" if "App API key" in hint else "unauthorized")
        msg = f"Unauthorized request: {hint}"
        body = ({"errors": [{"reason": "unauthorized", "message": msg}]} if v2
                else {"meta": {"error": msg}})
        return json_response(401, body, [(b"www-authenticate", b'Basic realm="track"')])

    def _ok(self, st: ServiceStore, n: int = 1) -> Response:
        st.accepted += n
        return 200, _EMPTY, _JSON

    # --- people ---------------------------------------------------------------------------
    def _target(self, st: ServiceStore, kind: str, value: str, person: Person | None,
                create: bool = True) -> Person | None:
        """The person an operation other than identify applies to, or None when it is
        dropped: a suppressed identifier, an unknown ``cio_id``."""
        if st.suppressed and st.is_suppressed(kind, value):
            st.ignore("suppressed_identifier")
            return None
        if person is not None:
            return person
        if kind == "cio_id":
            st.ignore("unknown_cio_id")
            return None
        return st.create(kind, value) if create else None

    def _resolve(self, st: ServiceStore, kind: str, value: str, person: Person | None,
                 attrs: dict[str, Any]) -> Person | None:
        """Whom an identify updates, following the spec of ``PUT /customers/{identifier}``:
        the person the path names; else the one a body identifier names (who then gets the
        path's identifier too); else a new person. None (dropped) when the identifiers are
        suppressed, the ``cio_id`` is unknown, or path and body name different people."""
        body = _body_ids(attrs)
        if st.suppressed and (st.is_suppressed(kind, value)
                              or any(st.is_suppressed(k, v) for k, v in body)):
            st.ignore("suppressed_identifier")
            return None
        if kind == "cio_id" and person is None:
            st.ignore("unknown_cio_id")
            return None
        others = {id(p): p for p in (st.find(k, v) for k, v in body) if p is not None}
        if person is None:
            if len(others) == 1:
                (found,) = others.values()
                st.set_identifiers(found, {kind: value})
                return found
            if others:
                st.ignore("attribute_update_failure")
                return None
            if attrs.get("_update") is True:
                st.ignore("update_only_no_person")
                return None
            return st.create(kind, value)
        if others and (len(others) > 1 or id(person) not in others):
            st.ignore("attribute_update_failure")
            return None
        return person

    def _identify(self, st: ServiceStore, person: Person, attrs: dict[str, Any],
                  by_cio: bool) -> None:
        """Apply attributes. ``id`` and ``email`` may be set where the person has none, and
        changed only when the person was addressed by ``cio_id``."""
        changes: dict[str, Any] = {}
        for kind, value in _body_ids(attrs):
            current = person.id if kind == "id" else person.email
            if current is not None and (current == value if kind == "id"
                                        else current.lower() == value.lower()):
                continue
            if current is None or by_cio:
                changes[kind] = value
            else:
                st.ignore("identifier_change_needs_cio_id")
        refused = {k for k in ("id", "email") if k in attrs and k not in changes
                   and attrs[k] != getattr(person, k)}
        for key, value in attrs.items():
            if key not in ("_update", "_timestamp", "cio_relationships") and key not in refused:
                person.attributes[key] = value
        phone = attrs.get("phone")
        if type(phone) is str and phone:
            changes["phone"] = phone
        if changes:
            st.set_identifiers(person, changes)

    @staticmethod
    def _relate(person: Person, rels: list[Any], add: bool) -> None:
        current = person.attributes.setdefault("cio_relationships", [])
        if add:
            current.extend(r for r in rels if r not in current)
        else:
            person.attributes["cio_relationships"] = [r for r in current if r not in rels]

    # --- v1 -------------------------------------------------------------------------------
    def _v1_customer(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        if req.method == "DELETE":
            kind, value, person = _v1_lookup(st, args[0])
            if person is not None:
                st.delete(person)
            elif kind == "cio_id":
                st.ignore("unknown_cio_id")
            return self._ok(st)
        body = req.json()
        attrs = check_attributes({} if body is None else body, "", self.strict)
        rel = attrs.get("cio_relationships")
        if rel is not None:
            check_v1_relationships(rel)
        kind, value, person = _v1_lookup(st, args[0])
        target = self._resolve(st, kind, value, person, attrs)
        if target is None:
            return 200, _EMPTY, _JSON
        self._identify(st, target, attrs, kind == "cio_id")
        if rel is not None and rel.get("relationships"):
            self._relate(target, rel["relationships"],
                         rel.get("action", "add_relationships") == "add_relationships")
        return self._ok(st)

    def _event_body(self, body: Any) -> tuple[str, str | None, int, Any, str]:
        body = check_obj(body, "body")
        name = check_event_name(body.get("name"))
        eid = _event_id(body.get("id"))
        etype = body.get("type", "event")
        if etype not in EVENT_TYPES:
            raise Reject(400, "invalid_enum", "type must be one of event, page, screen", "type")
        ts = body.get("timestamp")
        ts = int(time.time()) if ts is None else check_timestamp(ts, "timestamp", self.strict)
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

    def _v1_event(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        if len(req.body) > EVENT_DATA_LIMIT and len(orjson.dumps(
                (req.json() or {}).get("data"))) > EVENT_DATA_LIMIT:
            raise Reject(400, "limit_exceeded", f"data is larger than {EVENT_DATA_LIMIT} bytes",
                         "data")
        name, eid, ts, data, etype = self._event_body(req.json())
        person = self._target(st, *_v1_lookup(st, args[0]))
        if person is None:
            return 200, _EMPTY, _JSON
        if self._dedup(st, eid):
            return 200, _EMPTY, _JSON
        person.events.append((name, eid or new_ulid(), ts, data, etype))
        st.events += 1
        return self._ok(st)

    def _v1_anonymous(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
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
        st.anonymous_events.append({"name": name, "id": eid or _new_id(), "timestamp": ts,
                                    "data": data, "type": etype, "anonymous_id": anon})
        st.events += 1
        return self._ok(st)

    def _v1_add_device(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        body = check_obj(req.json(), "body")
        device = _device(require(body, "device"), "id", self.strict)
        person = self._target(st, *_v1_lookup(st, args[0]))
        if person is not None:
            person.devices[device["id"]] = device
        return self._ok(st)

    def _v1_delete_device(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        person = self._target(st, *_v1_lookup(st, args[0]), create=False)
        if person is not None:
            person.devices.pop(args[1], None)
        return self._ok(st)

    def _v1_suppress(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        self._suppress(st, *_v1_lookup(st, args[0]))
        return self._ok(st)

    def _v1_unsuppress(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        kind, value, _ = _v1_lookup(st, args[0])
        self._unsuppress(st, kind, value)
        return self._ok(st)

    @staticmethod
    def _suppress(st: ServiceStore, kind: str, value: str, person: Person | None) -> None:
        if person is None and kind == "cio_id":
            st.ignore("unknown_cio_id")
            return
        st.suppress(person, kind, value)

    @staticmethod
    def _unsuppress(st: ServiceStore, kind: str, value: str) -> None:
        if kind == "cio_id":
            match = next((p for p in st.suppressed.values() if p.cio_id == value), None)
            if match is None:
                st.ignore("unknown_cio_id")
                return
            kind, value = match.identifier_keys()[0].split(":", 1)
        st.unsuppress(kind, value)

    def _v1_merge(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        body = check_obj(req.json(), "body")
        pk, pv = _ident(body.get("primary"), "primary", MERGE_IDS)
        sk, sv = _ident(body.get("secondary"), "secondary", MERGE_IDS)
        self._merge(st, pk, pv, sk, sv)
        return self._ok(st)

    @staticmethod
    def _merge(st: ServiceStore, pk: str, pv: str, sk: str, sv: str) -> None:
        """The spec's merge: ``primary`` must already exist; when it (or the secondary)
        does not, nothing happens and the request still succeeds."""
        primary = st.find(pk, pv)
        secondary = st.find(sk, sv)
        if primary is None:
            st.ignore("merge_primary_missing")
        elif secondary is None:
            st.ignore("merge_secondary_missing")
        else:
            st.merge(primary, secondary)

    def _v1_metrics(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        body = check_obj(req.json(), "body")
        check_str(require(body, "delivery_id"), "delivery_id")
        metric = require(body, "metric")
        if metric not in V1_METRICS:
            raise Reject(400, "invalid_enum", f"metric must be one of {', '.join(V1_METRICS)}",
                         "metric")
        self._metric_fields(body)
        st.deliveries.append({"source": "metrics", **body})
        return self._ok(st)

    def _metric_fields(self, body: dict[str, Any]) -> None:
        for name in ("device_id", "reason", "href"):
            if body.get(name) is not None:
                check_str(body[name], name, empty=True)
        recipient = body.get("recipient")
        if recipient is not None and type(recipient) not in (str, int):
            raise Reject(400, "invalid_type", "recipient must be a string (or a device's "
                         "integer id)", "recipient")
        if body.get("timestamp") is not None:
            check_timestamp(body["timestamp"], "timestamp", self.strict)

    def _v1_push_events(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        """The legacy push metric declares no required field (its spec sample is ``{}``), so
        an incomplete one is acknowledged and ignored."""
        body = check_obj(req.json() or {}, "body")
        if body.get("delivery_id") is not None:
            check_str(body["delivery_id"], "delivery_id", empty=True)
        event = body.get("event")
        if event is not None and event not in DELIVERY_METRICS:
            raise Reject(400, "invalid_enum", "event must be one of opened, converted, "
                         "delivered", "event")
        self._metric_fields(body)
        if not body.get("delivery_id") or event is None:
            st.ignore("incomplete_metric")
            return self._ok(st)
        st.deliveries.append({"source": "push_events", **body})
        return self._ok(st)

    def _v1_region(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        return json_response(200, {"url": self.state.base_url, "region": "us",
                                   "environment_id": self.state.config.workspace_id})

    def _v1_segment(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        segment = args[0]
        if not segment.isdigit():
            raise Reject(400, "invalid_value", "segment_id must be a manual segment's "
                         "integer id", "segment_id")
        query = parse_qs(req.query.decode("latin-1"))
        id_type = query.get("id_type", ["id"])[-1]
        if id_type not in MERGE_IDS:
            raise Reject(400, "invalid_enum", "id_type must be one of id, email, cio_id",
                         "id_type")
        body = check_obj(req.json(), "body")
        ids = require(body, "ids")
        if type(ids) is not list:
            raise Reject(400, "invalid_type", "ids must be a list", "ids")
        if not ids:
            raise Reject(400, "invalid_value", "ids must not be empty", "ids")
        if len(ids) > SEGMENT_IDS_LIMIT:
            raise Reject(400, "limit_exceeded", f"ids holds more than {SEGMENT_IDS_LIMIT}", "ids")
        people = []
        for i, raw in enumerate(ids):
            value = str(raw) if type(raw) is int and id_type == "id" else raw
            if type(value) is not str:
                raise Reject(400, "invalid_type", f"ids[{i}] must be a string", "ids")
            if id_type == "cio_id" and value.startswith("cio_"):
                value = value[4:]
            people.append(st.find(id_type, value))
        add = req.path.endswith("/add_customers")
        for person in people:
            if person is None:
                st.ignore("segment_unknown_person")
            elif add:
                person.segments.add(segment)
            else:
                person.segments.discard(segment)
        return self._ok(st)

    def _v1_form(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        """A form submission identifies its respondent by exactly one of ``email``/``id``
        in ``data`` (all values strings) and updates them like an identify; the reserved
        form keys are ignored. Answers 204."""
        body = check_obj(req.json(), "body")
        data = check_obj(require(body, "data"), "data")
        named = [k for k in ("email", "id") if k in data]
        if len(named) != 1:
            raise Reject(400, "invalid_identifier", "data must hold exactly one of email or id",
                         "data")
        for key, value in data.items():
            if type(value) is not str:
                raise Reject(400, "invalid_type", f"data.{key} must be a string (form values "
                             "are strings)", f"data.{key}")
        kind = named[0]
        value = data[kind]
        if kind == "id":
            check_id(value, "data.id")
        elif not value.strip() or "@" not in value:
            raise Reject(400, "invalid_value", "data.email is not an email address",
                         "data.email")
        attrs = check_attributes({k: v for k, v in data.items() if k not in FORM_RESERVED},
                                 "data", self.strict)
        st.forms.append({"form_id": args[0], "data": data})
        person = self._resolve(st, kind, value, st.find(kind, value), attrs)
        if person is not None:
            self._identify(st, person, attrs, False)
        st.accepted += 1
        return _NO_CONTENT

    def _unsubscribe(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        body = check_obj(req.json() or {}, "body")
        if "unsubscribe" in body and type(body["unsubscribe"]) is not bool:
            raise Reject(400, "invalid_type", "unsubscribe must be a boolean", "unsubscribe")
        if "unsubscribe" not in body:
            st.ignore("incomplete_unsubscribe")
            return self._ok(st)
        st.deliveries.append({"delivery_id": args[0], "metric": "unsubscribed",
                              "unsubscribe": body["unsubscribe"]})
        return self._ok(st)

    # --- v2 -------------------------------------------------------------------------------
    def _v2(self, st: ServiceStore, req: Request, name: str) -> Response:
        now = int(time.time())
        if name == "batch":
            if len(req.body) >= BATCH_LIMIT:
                raise Reject(413, "too_large",
                             f"the batch request is {len(req.body)} bytes; the limit is 500 KB",
                             "body")
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
        if len(req.body) > ENTITY_LIMIT:
            raise Reject(413, "too_large",
                         f"the entity request is {len(req.body)} bytes; the limit is 32 KB",
                         "body")
        self._v2_op(st, req.json(), now)
        return self._ok(st)

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
        attrs = {} if attrs is None else check_attributes(attrs, "attributes", self.strict)
        ts = op.get("timestamp")
        if ts is not None:
            check_timestamp(ts, "timestamp", self.strict)
        rel = op.get("cio_relationships")
        if rel is not None:
            check_relationships(rel, "cio_relationships")
        person = self._resolve(st, kind, value, st.find(kind, value), attrs)
        if person is None:
            return
        self._identify(st, person, attrs, kind == "cio_id")
        if rel:
            self._relate(person, rel, True)

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
            check_timestamp(ts, "timestamp", self.strict)
        data = op.get("attributes")
        if data is None:
            data = {}
        elif type(data) is not dict:
            raise Reject(400, "invalid_type", "attributes must be an object", "attributes")
        elif not DECLARED_KEYS.isdisjoint(data):
            _check_declared(data, op["action"], "attributes")
        person = st.find(kind, value)
        if person is None or st.suppressed:
            person = self._target(st, kind, value, person)
            if person is None:
                return
        if eid is not None:
            if eid in st.event_ids:
                st.duplicates += 1
                return
            st.event_ids.add(eid)
        person.events.append((name, eid or new_ulid(), ts, data, op["action"]))
        st.events += 1

    def _v2_delete(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                   now: int) -> None:
        person = st.find(kind, value)
        if person is not None:
            st.delete(person)
        elif kind == "cio_id":
            st.ignore("unknown_cio_id")

    def _v2_add_device(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                       now: int) -> None:
        device = _device(op.get("device"), "token", self.strict)
        person = self._target(st, kind, value, st.find(kind, value))
        if person is not None:
            person.devices[device["id"]] = device

    def _v2_delete_device(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                          now: int) -> None:
        device = check_obj(op.get("device"), "device")
        token = check_str(device.get("token"), "device.token")
        person = self._target(st, kind, value, st.find(kind, value), create=False)
        if person is not None:
            person.devices.pop(token, None)

    def _v2_suppress(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                     now: int) -> None:
        self._suppress(st, kind, value, st.find(kind, value))

    def _v2_unsuppress(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                       now: int) -> None:
        self._unsuppress(st, kind, value)

    def _v2_relationships(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                          now: int) -> None:
        rel = op.get("cio_relationships")
        if type(rel) is not list or not rel:
            raise Reject(400, "missing_field", "cio_relationships must be a non-empty list",
                         "cio_relationships")
        check_relationships(rel, "cio_relationships")
        person = self._target(st, kind, value, st.find(kind, value))
        if person is not None:
            self._relate(person, rel, op["action"] == "add_relationships")

    def _v2_object(self, st: ServiceStore, op: dict[str, Any], action: Any) -> None:
        actions = ("identify", "identify_anonymous", "delete", "add_relationships",
                   "delete_relationships")
        if action not in actions:
            raise Reject(400, "missing_field" if action is None else "invalid_enum",
                         f"action must be one of {', '.join(actions)}", "action")
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
        rel = op.get("cio_relationships")
        if rel is not None:
            check_relationships(rel, "cio_relationships")
        elif action in ("add_relationships", "delete_relationships"):
            raise Reject(400, "missing_field", "cio_relationships is required",
                         "cio_relationships")
        attrs = op.get("attributes")
        if attrs is not None and action in ("identify", "identify_anonymous"):
            attrs = check_attributes(attrs, "attributes", self.strict)
        anonymous = op.get("anonymous_id")
        if anonymous is not None:
            check_str(anonymous, "anonymous_id")
        if action == "delete":
            st.objects.pop(key, None)
            return
        obj = st.objects.get(key)
        if obj is None:
            if key[0] == "cio":
                st.ignore("unknown_cio_object_id")  # cio_object_id only updates
                return
            obj = st.objects[key] = {"attributes": {}, "relationships": []}
        if attrs:
            obj["attributes"].update(attrs)
        if anonymous is not None:
            obj["relationships"].append({"identifiers": {"anonymous_id": anonymous}})
        if rel:
            if action == "delete_relationships":
                obj["relationships"] = [r for r in obj["relationships"] if r not in rel]
            else:
                obj["relationships"].extend(r for r in rel if r not in obj["relationships"])

    def _v2_delivery(self, st: ServiceStore, op: dict[str, Any], action: Any) -> None:
        if action != "event":
            raise Reject(400, "missing_field" if action is None else "invalid_enum",
                         "action must be event", "action")
        ids = check_obj(op.get("identifiers"), "identifiers")
        check_str(ids.get("id"), "identifiers.id")
        if op.get("name") not in DELIVERY_METRICS:
            raise Reject(400, "invalid_enum", "name must be one of opened, converted, delivered",
                         "name")
        attrs = check_obj(op.get("attributes"), "attributes")
        check_str(attrs.get("device_token"), "attributes.device_token")
        if op.get("timestamp") is not None:
            check_timestamp(op["timestamp"], "timestamp", self.strict)
        st.deliveries.append({"source": "v2", **op})


def _new_id() -> str:
    return ulid_str(new_ulid())
