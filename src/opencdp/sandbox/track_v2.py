"""Customer.io Track API v2: ``/api/v2/entity`` and ``/api/v2/batch``.

Errors are ``{"errors": [{reason, field, message}]}``, and a batch with some bad operations
is a 207 listing them by ``batch_index`` while every other operation is applied. Sizes over
the request limits (entity 32 KB, batch 500 KB) are answered 413; an operation over 32 KB
inside a batch is one 207 error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..clock import Clock
from ..message import new_ulid
from . import track_people as people
from .http import Reject, Request, Response, json_response
from .state import State
from .store import ServiceStore
from .track_fields import (
    BATCH_LIMIT,
    DECLARED_KEYS,
    DELIVERY_METRICS,
    EMPTY,
    ENTITY_LIMIT,
    JSON,
    MERGE_IDS,
    PERSON_IDS,
    check_declared,
    check_device,
    check_event_id,
    check_ident,
    ok,
)
from .validate import (
    MS_THRESHOLD,
    check_attributes,
    check_event_name,
    check_id,
    check_obj,
    check_relationships,
    check_str,
    check_timestamp,
)

__all__ = ["TrackV2"]


class TrackV2:
    """The v2 operations; ``handle`` answers a whole ``entity`` or ``batch`` request."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.strict = state.config.strict
        self.clock: Clock = state.clock
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

    def handle(self, st: ServiceStore, req: Request, name: str) -> Response:
        now = int(self.clock.time())
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
            return 200, EMPTY, JSON
        if len(req.body) > ENTITY_LIMIT:
            raise Reject(413, "too_large",
                         f"the entity request is {len(req.body)} bytes; the limit is 32 KB",
                         "body")
        self._v2_op(st, req.json(), now)
        return ok(st)

    def _v2_op(self, st: ServiceStore, op: Any, now: int) -> None:
        if type(op) is not dict:
            raise Reject(400, "invalid_type", "an operation must be an object")
        typ = op.get("type")
        action = op.get("action")
        if type(action) is not str and action is not None:
            raise Reject(400, "invalid_type", "action must be a string", "action")
        if typ == "person":
            if action == "merge":
                pk, pv = check_ident(op.get("primary"), "primary", MERGE_IDS)
                sk, sv = check_ident(op.get("secondary"), "secondary", MERGE_IDS)
                people.merge(st, pk, pv, sk, sv)
                return
            handler = self.v2_person.get(action)  # type: ignore[arg-type]
            if handler is None:
                raise Reject(400, "missing_field" if action is None else "invalid_enum",
                             "action must be one of " + ", ".join([*self.v2_person, "merge"]),
                             "action")
            kind, value = check_ident(op.get("identifiers"), "identifiers", PERSON_IDS)
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
        person = people.resolve(st, kind, value, st.find(kind, value), attrs)
        if person is None:
            return
        people.identify(st, person, attrs, kind == "cio_id")
        if rel:
            people.relate(person, rel, True)

    def _v2_event(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                  now: int) -> None:
        name = op.get("name")
        if type(name) is not str or not 0 < len(name) <= 25 or name.isspace() or (
                name[0] == " " or name[-1] == " "):
            name = check_event_name(name)
        eid = op.get("id")
        if eid is not None:
            eid = check_event_id(eid)
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
            check_declared(data, op["action"], "attributes")
        person = st.find(kind, value)
        if person is None or st.suppressed:
            person = people.target(st, kind, value, person)
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
        device = check_device(op.get("device"), "token", self.strict)
        person = people.target(st, kind, value, st.find(kind, value))
        if person is not None:
            person.devices[device["id"]] = device

    def _v2_delete_device(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                          now: int) -> None:
        device = check_obj(op.get("device"), "device")
        token = check_str(device.get("token"), "device.token")
        person = people.target(st, kind, value, st.find(kind, value), create=False)
        if person is not None:
            person.devices.pop(token, None)

    def _v2_suppress(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                     now: int) -> None:
        people.suppress(st, kind, value, st.find(kind, value))

    def _v2_unsuppress(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                       now: int) -> None:
        people.unsuppress(st, kind, value)

    def _v2_relationships(self, st: ServiceStore, kind: str, value: str, op: dict[str, Any],
                          now: int) -> None:
        rel = op.get("cio_relationships")
        if type(rel) is not list or not rel:
            raise Reject(400, "missing_field", "cio_relationships must be a non-empty list",
                         "cio_relationships")
        check_relationships(rel, "cio_relationships")
        person = people.target(st, kind, value, st.find(kind, value))
        if person is not None:
            people.relate(person, rel, op["action"] == "add_relationships")

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

