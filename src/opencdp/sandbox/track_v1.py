"""Customer.io Track API v1: one request per operation, errors ``{"meta": {"errors": [...]}}``
(merge: ``{"meta": {"error": ...}}``).

One class per API version because the two share nothing but field rules
(``track_fields``) and whom a call is about (``track_people``); v1's own handlers are many
small endpoints, v2's one batch of operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from ..clock import Clock
from ..message import new_ulid, ulid_str
from . import track_people as people
from .http import Reject, Request, Response, json_response
from .state import State
from .store import ServiceStore
from .track_fields import (
    DECLARED_KEYS,
    DELIVERY_METRICS,
    EMPTY,
    EVENT_DATA_LIMIT,
    EVENT_TYPES,
    FORM_RESERVED,
    JSON,
    MERGE_IDS,
    NO_CONTENT,
    SEGMENT_IDS_LIMIT,
    V1_METRICS,
    check_declared,
    check_device,
    check_event_id,
    check_ident,
    ok,
)
from .validate import (
    check_attributes,
    check_event_name,
    check_id,
    check_obj,
    check_str,
    check_timestamp,
    check_v1_relationships,
    require,
)

__all__ = ["TrackV1"]


class TrackV1:
    """The v1 endpoints, by the operation name ``TrackAPI`` matched from the path."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.strict = state.config.strict
        self.clock: Clock = state.clock
        self.routes: dict[str, Callable[[ServiceStore, Request, list[str]], Response]] = {
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

    def _v1_customer(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        if req.method == "DELETE":
            kind, value, person = people.v1_lookup(st, args[0])
            if person is not None:
                st.delete(person)
            elif kind == "cio_id":
                st.ignore("unknown_cio_id")
            return ok(st)
        body = req.json()
        attrs = check_attributes({} if body is None else body, "", self.strict)
        rel = attrs.get("cio_relationships")
        if rel is not None:
            check_v1_relationships(rel)
        kind, value, person = people.v1_lookup(st, args[0])
        target = people.resolve(st, kind, value, person, attrs)
        if target is None:
            return 200, EMPTY, JSON
        people.identify(st, target, attrs, kind == "cio_id")
        if rel is not None and rel.get("relationships"):
            people.relate(target, rel["relationships"],
                         rel.get("action", "add_relationships") == "add_relationships")
        return ok(st)

    def _event_body(self, body: Any) -> tuple[str, str | None, int, Any, str]:
        body = check_obj(body, "body")
        name = check_event_name(body.get("name"))
        eid = check_event_id(body.get("id"))
        etype = body.get("type", "event")
        if etype not in EVENT_TYPES:
            raise Reject(400, "invalid_enum", "type must be one of event, page, screen", "type")
        ts = body.get("timestamp")
        ts = int(self.clock.time()) if ts is None else check_timestamp(ts, "timestamp", self.strict)
        data = body.get("data")
        if data is None:
            data = {}
        else:
            check_obj(data, "data")
            if not DECLARED_KEYS.isdisjoint(data):
                check_declared(data, etype, "data")
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
        person = people.target(st, *people.v1_lookup(st, args[0]))
        if person is None:
            return 200, EMPTY, JSON
        if self._dedup(st, eid):
            return 200, EMPTY, JSON
        person.events.append((name, eid or new_ulid(), ts, data, etype))
        st.events += 1
        return ok(st)

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
            return 200, EMPTY, JSON
        st.anonymous_events.append({"name": name, "id": eid or _new_id(), "timestamp": ts,
                                    "data": data, "type": etype, "anonymous_id": anon})
        st.events += 1
        return ok(st)

    def _v1_add_device(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        body = check_obj(req.json(), "body")
        device = check_device(require(body, "device"), "id", self.strict)
        person = people.target(st, *people.v1_lookup(st, args[0]))
        if person is not None:
            person.devices[device["id"]] = device
        return ok(st)

    def _v1_delete_device(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        person = people.target(st, *people.v1_lookup(st, args[0]), create=False)
        if person is not None:
            person.devices.pop(args[1], None)
        return ok(st)

    def _v1_suppress(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        people.suppress(st, *people.v1_lookup(st, args[0]))
        return ok(st)

    def _v1_unsuppress(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        kind, value, _ = people.v1_lookup(st, args[0])
        people.unsuppress(st, kind, value)
        return ok(st)



    def _v1_merge(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        body = check_obj(req.json(), "body")
        pk, pv = check_ident(body.get("primary"), "primary", MERGE_IDS)
        sk, sv = check_ident(body.get("secondary"), "secondary", MERGE_IDS)
        people.merge(st, pk, pv, sk, sv)
        return ok(st)


    def _v1_metrics(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        body = check_obj(req.json(), "body")
        check_str(require(body, "delivery_id"), "delivery_id")
        metric = require(body, "metric")
        if metric not in V1_METRICS:
            raise Reject(400, "invalid_enum", f"metric must be one of {', '.join(V1_METRICS)}",
                         "metric")
        self._metric_fields(body)
        st.deliveries.append({"source": "metrics", **body})
        return ok(st)

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
            return ok(st)
        st.deliveries.append({"source": "push_events", **body})
        return ok(st)

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
        return ok(st)

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
        person = people.resolve(st, kind, value, st.find(kind, value), attrs)
        if person is not None:
            people.identify(st, person, attrs, False)
        st.accepted += 1
        return NO_CONTENT

    def _unsubscribe(self, st: ServiceStore, req: Request, args: list[str]) -> Response:
        body = check_obj(req.json() or {}, "body")
        if "unsubscribe" in body and type(body["unsubscribe"]) is not bool:
            raise Reject(400, "invalid_type", "unsubscribe must be a boolean", "unsubscribe")
        if "unsubscribe" not in body:
            st.ignore("incomplete_unsubscribe")
            return ok(st)
        st.deliveries.append({"delivery_id": args[0], "metric": "unsubscribed",
                              "unsubscribe": body["unsubscribe"]})
        return ok(st)



def _new_id() -> str:
    return ulid_str(new_ulid())
