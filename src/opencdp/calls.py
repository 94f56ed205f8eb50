"""Arguments to messages: what every call becomes, the same for both facades.

The guards check and normalise the arguments into a frozen snapshot on the caller's thread;
this module picks the destinations and the identity the idempotency guard de-duplicates by
(a caller's own event id; never the content, since a repeated state change is a new fact).

Then, still on the caller's thread and in this order: an event's ``context=`` is folded into
its data (``context.py``), and ``Calls.admit`` passes the message through ``before_send``.
Both happen once per call whichever facade made it: the context where the data is made,
the hook where a facade hands the finished message to the engine (a call such as
``track_by`` that builds on ``track`` never runs either twice).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from . import registry
from .context import fold
from .errors import ConfigurationError
from .guards import entities
from .message import CUSTOMERIO, OPENCDP, Message, new_ulid, split_kind

if TYPE_CHECKING:
    from .engine import Engine
    from .options import Context, MessageView

__all__ = ["AsyncTrackAPICalls", "Calls", "Identifiers", "Queued", "TrackAPICalls"]

Identifiers = Mapping[str, str]
"""One Track v2 person identifier: ``{"id": ...}``, ``{"email": ...}``, ``{"cio_id": ...}`` or
``{"phone": "+15551234567"}``."""
_Timestamp = datetime | int | float | None
_IdType = Literal["id", "email", "cio_id"]

_message = tuple.__new__

_DATA_FIELDS: Final = {"identify": "attributes", "object_identify": "attributes",
                       "track": "properties", "track_anonymous": "properties",
                       "page": "properties", "screen": "properties",
                       "page_anonymous": "properties", "screen_anonymous": "properties"}
"""The kinds whose data ``before_send`` may change, and what the guards call it; the others'
data is structure (devices, merges, relationships, segments) the hook may read only."""

Queued = tuple[Message, str | None]
"""A call's message and its identity for the idempotency guard (a caller's event id)."""


def _own_time(ts: int | None) -> int:
    """The time of a call made with a caller's event id.

    Without an explicit timestamp a message's time is read from its id, which is only the
    time of the call when the SDK minted the id: a caller's id (a replayed ULID, an
    ``Idempotency-Key``, all zeros) would set Customer.io's event time unchecked while the
    gateway stores the time of receipt. So such a message carries its own time.
    """
    return int(time.time()) if ts is None else ts


class Calls:
    """Arguments to messages, the same for both facades."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.guards = engine.guards
        self.everywhere = engine.everywhere

    def _cio_only(self, operation: str) -> int:
        if not self.engine.dual:
            raise ConfigurationError(
                f"{operation} is a Customer.io operation (the OpenCDP gateway has no endpoint for "
                "it); it needs customer_io=CustomerIO(...) with dual-write on"
            )
        return CUSTOMERIO

    def identify(self, user_id: object, attributes: object, timestamp: object,
                 anonymous_id: object) -> Queued:
        uid, data, ts = self.guards.identify(user_id, attributes, timestamp, anonymous_id)
        return Message(new_ulid(), "identify", uid, None, data or {}, ts, self.everywhere), None

    def track(self, user_id: object, event: object, properties: object, timestamp: object,
              event_id: object, context: object = None) -> Queued:
        uid, name, data, ts = self.guards.track(user_id, event, properties, timestamp)
        if context is not None:
            data = fold(data, context, "track", self._rep)
        if event_id is None:
            # tuple.__new__ skips NamedTuple's argument handling: half the envelope's cost
            # on the hottest call.
            return _message(Message, (new_ulid(), "track", uid, name, data, ts,
                                      self.everywhere)), None
        mid = self.guards.event_id(event_id)
        return (Message(mid, "track", uid, name, data, _own_time(ts), self.everywhere),
                f"event:{mid}")

    def track_anonymous(self, anonymous_id: object, event: object, properties: object,
                        timestamp: object, event_id: object, context: object = None) -> Queued:
        destinations = self._cio_only("track_anonymous")
        aid, name, data, ts = self.guards.track_anonymous(anonymous_id, event, properties,
                                                          timestamp)
        if context is not None:
            data = fold(data, context, "track_anonymous", self._rep)
        if event_id is None:
            mid = new_ulid()
        else:
            mid, ts = self.guards.event_id(event_id), _own_time(ts)
        return (Message(mid, "track_anonymous", aid, name, data, ts, destinations),
                None if event_id is None else f"event:{mid}")

    @staticmethod
    def with_message_id(queued: Queued, message_id: int) -> Queued:
        """``queued`` under a message id chosen by a producer, not minted here.

        For a backfill (``opencdp import``): its records must keep one id across re-runs
        and resumes, so Customer.io drops a resent event by its ``id`` and OpenCDP sees the
        same ``Idempotency-Key``, and identify and device calls have no ``event_id`` to carry
        one. The message then carries its own time, as with a caller's event id (the id's
        time would otherwise be read as the event's). No idempotency key is claimed: the
        producer's checkpoint decides what was sent, and a process-wide claim would only
        hold memory for ids that by construction never repeat.
        """
        m = queued[0]
        return _message(Message, (message_id, m.kind, m.identifier, m.name, m.data,
                                  _own_time(m.ts), m.destinations)), None

    def register_device(self, user_id: object, device_id: object, platform: object,
                        fields: dict[str, Any]) -> Queued:
        uid, did, data = self.guards.device(user_id, device_id, platform, fields)
        destinations = self.everywhere
        if data.get("platform") == "web" and destinations & CUSTOMERIO:
            destinations = OPENCDP
            self.engine.log.warning_once(
                "web-device", "[CDP] OCDP160 web devices are registered with OpenCDP only: "
                "Customer.io takes ios and android devices (keyed by push token)")
        return Message(new_ulid(), "add_device", uid, did, data, None, destinations), None

    def person(self, kind: str, user_id: object, device_token: object = None) -> Queued:
        destinations = self._cio_only(kind)
        uid = self.guards.identifier(user_id)
        token = (self.guards.identifier(device_token, "device_token")
                 if device_token is not None else None)
        return Message(new_ulid(), kind, uid, token, None, None, destinations), None

    def merge(self, primary: object, secondary: object) -> Queued:
        destinations = self._cio_only("merge_people")
        label, sides = self.guards.merge(primary, secondary)
        return Message(new_ulid(), "merge", label, None, sides, None, destinations), None

    # -- the rest of the Track API -------------------------------------------------------------

    @property
    def _rep(self) -> Any:
        return self.guards._reporter

    def _person(self, operation: str, who: object) -> tuple[str, str, int]:
        """Identifier, kind suffix and destinations of a person given by id or identifiers."""
        if isinstance(who, Mapping):
            key, value = entities.check_person(who, self._rep)
            if key != "id":
                return value, f":{key}", self._cio_only(operation)
            who = value
        return self.guards.identifier(who), "", self.everywhere

    def identify_by(self, identifiers: object, attributes: object, timestamp: object
                    ) -> Queued:
        key, value = entities.check_person(identifiers, self._rep)
        if key == "id":
            return self.identify(value, attributes, timestamp, None)
        destinations = self._cio_only("identify_by")
        data = entities.check_attributes(attributes, "attributes", self._rep)
        ts = None if timestamp is None else self.guards.timestamp(timestamp)
        return Message(new_ulid(), f"identify:{key}", value, None, data, ts, destinations), None

    def track_by(self, identifiers: object, event: object, properties: object,
                 timestamp: object, event_id: object, context: object = None) -> Queued:
        key, value = entities.check_person(identifiers, self._rep)
        if key == "id":
            return self.track(value, event, properties, timestamp, event_id, context)
        destinations = self._cio_only("track_by")
        # The event is checked as an anonymous one is: the person was checked above.
        _, name, data, ts = self.guards.track_anonymous("-", event, properties, timestamp)
        if context is not None:
            data = fold(data, context, "track", self._rep)
        if event_id is None:
            mid = new_ulid()
        else:
            mid, ts = self.guards.event_id(event_id), _own_time(ts)
        return (Message(mid, f"track:{key}", value, name, data, ts, destinations),
                None if event_id is None else f"event:{mid}")

    def person_by(self, kind: str, identifiers: object) -> Queued:
        key, value = entities.check_person(identifiers, self._rep)
        destinations = self._cio_only(f"{kind}_by")
        full = kind if key == "id" else f"{kind}:{key}"
        return Message(new_ulid(), full, value, None, None, None, destinations), None

    def view(self, kind: Literal["page", "screen"], who: object, name: object,
             properties: object, timestamp: object, context: object = None) -> Queued:
        ident, suffix, destinations = self._person(kind, who)
        field = "url" if kind == "page" else "name"
        text = entities.check_view_name(name, field, self._rep)
        data = entities.check_attributes(properties, "properties", self._rep) or None
        if context is not None:
            data = fold(data, context, kind, self._rep)
        ts = None if timestamp is None else self.guards.timestamp(timestamp)
        return Message(new_ulid(), kind + suffix, ident, text, data, ts, destinations), None

    def view_anonymous(self, kind: Literal["page", "screen"], anonymous_id: object,
                       name: object, properties: object, timestamp: object,
                       context: object = None) -> Queued:
        destinations = self._cio_only(f"{kind}_anonymous")
        aid = self.guards.identifier(anonymous_id, "anonymous_id")
        text = entities.check_view_name(name, "url" if kind == "page" else "name", self._rep)
        data = entities.check_attributes(properties, "properties", self._rep) or None
        if context is not None:
            data = fold(data, context, kind, self._rep)
        ts = None if timestamp is None else self.guards.timestamp(timestamp)
        return (Message(new_ulid(), f"{kind}_anonymous", aid, text, data, ts, destinations),
                None)

    def relationships(self, kind: str, who: object, objects: object) -> Queued:
        destinations = self._cio_only(kind)
        rels = entities.check_relationships(objects, self._rep)
        ident, suffix, _ = self._person(kind, who)
        return (Message(new_ulid(), kind + suffix, ident, None, {"relationships": rels}, None,
                        destinations), None)

    def identify_object(self, object_type_id: object, object_id: object,
                        attributes: object) -> Queued:
        destinations = self._cio_only("identify_object")
        tid, oid = entities.check_object(object_type_id, object_id, self._rep)
        data = entities.check_attributes(attributes, "attributes", self._rep)
        return Message(new_ulid(), "object_identify", oid, tid, data, None, destinations), None

    def delete_object(self, object_type_id: object, object_id: object) -> Queued:
        destinations = self._cio_only("delete_object")
        tid, oid = entities.check_object(object_type_id, object_id, self._rep)
        return Message(new_ulid(), "object_delete", oid, tid, None, None, destinations), None

    def anonymous_relationship(self, anonymous_id: object, object_type_id: object,
                               object_id: object, attributes: object) -> Queued:
        destinations = self._cio_only("add_anonymous_relationship")
        aid = self.guards.identifier(anonymous_id, "anonymous_id")
        tid, oid = entities.check_object(object_type_id, object_id, self._rep)
        data: dict[str, Any] = {"anonymous_id": aid}
        if attributes is not None:
            data["attributes"] = entities.check_attributes(attributes, "attributes", self._rep)
        return Message(new_ulid(), "object_anonymous", oid, tid, data, None, destinations), None

    def metric(self, delivery_id: object, metric: object, fields: Mapping[str, object],
               timestamp: object) -> Queued:
        destinations = self._cio_only("report_metric")
        did, name = entities.check_delivery(delivery_id, metric, self._rep)
        data = {k: v for k, v in fields.items() if v is not None}
        for key, value in data.items():
            if not isinstance(value, str):
                raise self._rep.refuse(entities.BadDelivery, key,
                                       f"{key} is {type(value).__name__}")
        ts = None if timestamp is None else self.guards.timestamp(timestamp)
        return Message(new_ulid(), "metric", did, name, data, ts, destinations), None

    def push_metric(self, delivery_id: object, metric: object, device_token: object,
                    timestamp: object) -> Queued:
        destinations = self._cio_only("report_push_metric")
        token = device_token if isinstance(device_token, str) and device_token.strip() \
            else None
        did, name = entities.check_delivery(delivery_id, metric, self._rep,
                                            entities.PUSH_METRICS, token)
        ts = None if timestamp is None else self.guards.timestamp(timestamp)
        return (Message(new_ulid(), "delivery_event", did, name,
                        {"device_token": (token or "").strip()}, ts, destinations), None)

    def unsubscribe(self, delivery_id: object) -> Queued:
        destinations = self._cio_only("unsubscribe_delivery")
        did, _ = entities.check_delivery(delivery_id, None, self._rep, ())
        return Message(new_ulid(), "unsubscribe", did, None, None, None, destinations), None

    def segment(self, kind: str, segment_id: object, ids: object, id_type: object) -> Queued:
        destinations = self._cio_only("add_to_segment" if kind == "segment_add"
                                      else "remove_from_segment")
        sid, key, people = entities.check_segment(segment_id, ids, id_type, self._rep)
        return Message(new_ulid(), kind, sid, key, {"ids": people}, None, destinations), None

    # -- before_send -----------------------------------------------------------------------

    def admit(self, message: Message) -> Message:
        """``message`` as ``before_send`` leaves it, or, dropped, the same message for no
        destination (the engine counts it and queues nothing).

        The hook fails closed: one that raises or returns what the guards refuse drops the
        message (OCDP344), as sentry's does, because a hook that scrubs personal data must
        not let the unscrubbed data through when it breaks."""
        base = split_kind(message.kind)[0]
        field = _DATA_FIELDS.get(base)
        data = dict(message.data or {})
        view: MessageView = {
            "id": message.ulid, "kind": message.kind, "identifier": message.identifier,
            "name": message.name,
            "data": data if field is not None else copy.deepcopy(data),
            "timestamp": message.timestamp,
            "destinations": registry.names_in(message.destinations),
        }
        fixed = [(key, value) for key, value in view.items() if key != "data"]
        try:
            result = self.engine.config.before_send(view)
        except Exception as exc:
            return self.engine.hook_dropped(message, "raised", f"raised {type(exc).__name__}: "
                                                               f"{exc}")
        if result is None:
            return self.engine.hook_dropped(message, "returned_none")
        try:
            return self._returned(message, field, result, fixed)
        except Exception as exc:
            return self.engine.hook_dropped(message, "invalid", str(exc))

    def _returned(self, message: Message, field: str | None, result: object,
                  fixed: Iterable[tuple[str, object]]) -> Message:
        if not isinstance(result, Mapping):
            raise TypeError(f"returned {type(result).__name__}, not the message or None")
        changed = [key for key, value in fixed if key in result and result[key] != value]
        if changed:
            raise ValueError(f"changed {', '.join(changed)}; only data may change")
        data = result.get("data", message.data)
        if field is None:
            if data != (message.data or {}):
                raise ValueError(f"changed the data of a {message.kind} message; only "
                                 "identify, event, view and object data may change")
            return message
        checked = entities.check_attributes(data, field, self._rep)
        return message._replace(data=checked if checked or message.data is not None else None)


class TrackAPICalls:
    """The Track API beyond identify, track and devices, for ``Client``: each call returns
    the message's event id once it is queued, like every other call."""

    _calls: Calls

    def _do(self, queued: Queued) -> str:
        raise NotImplementedError

    def identify_by(self, identifiers: Identifiers, attributes: Mapping[str, Any] | None = None,
                    *, timestamp: _Timestamp = None) -> str:
        """Create or update a person named by ``email``, ``cio_id`` or ``phone`` (Customer.io;
        ``{"id": ...}`` is the same as ``identify``)."""
        return self._do(self._calls.identify_by(identifiers, attributes, timestamp))

    def track_by(self, identifiers: Identifiers, event: str,
                 properties: Mapping[str, Any] | None = None, *, timestamp: _Timestamp = None,
                 event_id: str | None = None,
                 context: Context | None = None) -> str:
        """Record an event for a person named by ``email``, ``cio_id`` or ``phone``."""
        return self._do(self._calls.track_by(identifiers, event, properties, timestamp,
                                             event_id, context))

    def suppress_by(self, identifiers: Identifiers) -> str:
        """Suppress a person named by ``id``, ``email``, ``cio_id`` or ``phone``."""
        return self._do(self._calls.person_by("suppress", identifiers))

    def unsuppress_by(self, identifiers: Identifiers) -> str:
        return self._do(self._calls.person_by("unsuppress", identifiers))

    def page(self, user_id: str | Identifiers, url: str,
             properties: Mapping[str, Any] | None = None, *,
             timestamp: _Timestamp = None,
             context: Context | None = None) -> str:
        """Record a page view (Customer.io ``page``; OpenCDP gets a ``page_viewed`` track)."""
        return self._do(self._calls.view("page", user_id, url, properties, timestamp, context))

    def screen(self, user_id: str | Identifiers, name: str,
               properties: Mapping[str, Any] | None = None, *,
               timestamp: _Timestamp = None,
               context: Context | None = None) -> str:
        """Record a screen view (Customer.io ``screen``; OpenCDP gets ``screen_viewed``)."""
        return self._do(self._calls.view("screen", user_id, name, properties, timestamp, context))

    def page_anonymous(self, anonymous_id: str, url: str,
                       properties: Mapping[str, Any] | None = None, *,
                       timestamp: _Timestamp = None,
                       context: Context | None = None) -> str:
        return self._do(self._calls.view_anonymous("page", anonymous_id, url, properties,
                                                   timestamp, context))

    def screen_anonymous(self, anonymous_id: str, name: str,
                         properties: Mapping[str, Any] | None = None, *,
                         timestamp: _Timestamp = None,
                         context: Context | None = None) -> str:
        return self._do(self._calls.view_anonymous("screen", anonymous_id, name, properties,
                                                   timestamp, context))

    def identify_object(self, object_type_id: str | int, object_id: str,
                        attributes: Mapping[str, Any] | None = None) -> str:
        """Create or update a Customer.io object (a company, an account...)."""
        return self._do(self._calls.identify_object(object_type_id, object_id, attributes))

    def delete_object(self, object_type_id: str | int, object_id: str) -> str:
        return self._do(self._calls.delete_object(object_type_id, object_id))

    def add_relationships(self, user_id: str | Identifiers,
                          objects: Iterable[Mapping[str, Any]]) -> str:
        """Relate a person to objects: ``[{"object_type_id": "1", "object_id": "acme",
        "attributes": {"role": "admin"}}]``."""
        return self._do(self._calls.relationships("add_relationships", user_id,
                                                  _listed(objects)))

    def delete_relationships(self, user_id: str | Identifiers,
                             objects: Iterable[Mapping[str, Any]]) -> str:
        return self._do(self._calls.relationships("delete_relationships", user_id,
                                                  _listed(objects)))

    def add_anonymous_relationship(self, anonymous_id: str, object_type_id: str | int,
                                   object_id: str,
                                   attributes: Mapping[str, Any] | None = None) -> str:
        """Relate an object to a visitor; the relationship follows them when identified."""
        return self._do(self._calls.anonymous_relationship(anonymous_id, object_type_id,
                                                           object_id, attributes))

    def report_metric(self, delivery_id: str, metric: str, *, recipient: str | None = None,
                      reason: str | None = None, href: str | None = None,
                      timestamp: _Timestamp = None) -> str:
        """Report a delivery's metric (``/api/v1/metrics``: clicked, opened, bounced...)."""
        return self._do(self._calls.metric(
            delivery_id, metric, {"recipient": recipient, "reason": reason, "href": href},
            timestamp))

    def report_push_metric(self, delivery_id: str, metric: str, device_token: str, *,
                           timestamp: _Timestamp = None) -> str:
        """Report a push's opened, converted or delivered (a batched v2 delivery event)."""
        return self._do(self._calls.push_metric(delivery_id, metric, device_token, timestamp))

    def unsubscribe_delivery(self, delivery_id: str) -> str:
        """Unsubscribe the person a delivery went to, attributed to that delivery."""
        return self._do(self._calls.unsubscribe(delivery_id))

    def add_to_segment(self, segment_id: int | str, ids: Iterable[str], *,
                       id_type: _IdType = "id") -> str:
        """Add up to 1000 people to a manual segment."""
        return self._do(self._calls.segment("segment_add", segment_id, _listed(ids), id_type))

    def remove_from_segment(self, segment_id: int | str, ids: Iterable[str], *,
                            id_type: _IdType = "id") -> str:
        return self._do(self._calls.segment("segment_remove", segment_id, _listed(ids),
                                            id_type))


class AsyncTrackAPICalls:
    """The same calls as ``TrackAPICalls``, awaitable, for ``AsyncClient``."""

    _calls: Calls

    async def _do(self, queued: Queued) -> str:
        raise NotImplementedError

    async def identify_by(self, identifiers: Identifiers,
                          attributes: Mapping[str, Any] | None = None, *,
                          timestamp: _Timestamp = None) -> str:
        return await self._do(self._calls.identify_by(identifiers, attributes, timestamp))

    async def track_by(self, identifiers: Identifiers, event: str,
                       properties: Mapping[str, Any] | None = None, *,
                       timestamp: _Timestamp = None, event_id: str | None = None,
                       context: Context | None = None) -> str:
        return await self._do(self._calls.track_by(identifiers, event, properties, timestamp,
                                                   event_id, context))

    async def suppress_by(self, identifiers: Identifiers) -> str:
        return await self._do(self._calls.person_by("suppress", identifiers))

    async def unsuppress_by(self, identifiers: Identifiers) -> str:
        return await self._do(self._calls.person_by("unsuppress", identifiers))

    async def page(self, user_id: str | Identifiers, url: str,
                   properties: Mapping[str, Any] | None = None, *,
                   timestamp: _Timestamp = None,
                   context: Context | None = None) -> str:
        return await self._do(self._calls.view("page", user_id, url, properties, timestamp,
                                               context))

    async def screen(self, user_id: str | Identifiers, name: str,
                     properties: Mapping[str, Any] | None = None, *,
                     timestamp: _Timestamp = None,
                     context: Context | None = None) -> str:
        return await self._do(self._calls.view("screen", user_id, name, properties, timestamp,
                                               context))

    async def page_anonymous(self, anonymous_id: str, url: str,
                             properties: Mapping[str, Any] | None = None, *,
                             timestamp: _Timestamp = None,
                             context: Context | None = None) -> str:
        return await self._do(self._calls.view_anonymous("page", anonymous_id, url, properties,
                                                         timestamp, context))

    async def screen_anonymous(self, anonymous_id: str, name: str,
                               properties: Mapping[str, Any] | None = None, *,
                               timestamp: _Timestamp = None,
                               context: Context | None = None) -> str:
        return await self._do(self._calls.view_anonymous("screen", anonymous_id, name, properties,
                                                         timestamp, context))

    async def identify_object(self, object_type_id: str | int, object_id: str,
                              attributes: Mapping[str, Any] | None = None) -> str:
        return await self._do(self._calls.identify_object(object_type_id, object_id, attributes))

    async def delete_object(self, object_type_id: str | int, object_id: str) -> str:
        return await self._do(self._calls.delete_object(object_type_id, object_id))

    async def add_relationships(self, user_id: str | Identifiers,
                                objects: Iterable[Mapping[str, Any]]) -> str:
        return await self._do(self._calls.relationships("add_relationships", user_id,
                                                              _listed(objects)))

    async def delete_relationships(self, user_id: str | Identifiers,
                                   objects: Iterable[Mapping[str, Any]]) -> str:
        return await self._do(self._calls.relationships("delete_relationships", user_id,
                                                              _listed(objects)))

    async def add_anonymous_relationship(self, anonymous_id: str, object_type_id: str | int,
                                         object_id: str,
                                         attributes: Mapping[str, Any] | None = None) -> str:
        return await self._do(self._calls.anonymous_relationship(anonymous_id, object_type_id,
                                                                 object_id, attributes))

    async def report_metric(self, delivery_id: str, metric: str, *, recipient: str | None = None,
                            reason: str | None = None, href: str | None = None,
                            timestamp: _Timestamp = None) -> str:
        return await self._do(self._calls.metric(
                  delivery_id, metric, {"recipient": recipient, "reason": reason, "href": href},
                  timestamp))

    async def report_push_metric(self, delivery_id: str, metric: str, device_token: str, *,
                                 timestamp: _Timestamp = None) -> str:
        return await self._do(self._calls.push_metric(delivery_id, metric, device_token, timestamp))

    async def unsubscribe_delivery(self, delivery_id: str) -> str:
        return await self._do(self._calls.unsubscribe(delivery_id))

    async def add_to_segment(self, segment_id: int | str, ids: Iterable[str], *,
                             id_type: _IdType = "id") -> str:
        return await self._do(self._calls.segment("segment_add", segment_id, _listed(ids), id_type))

    async def remove_from_segment(self, segment_id: int | str, ids: Iterable[str], *,
                                  id_type: _IdType = "id") -> str:
        return await self._do(self._calls.segment("segment_remove", segment_id, _listed(ids),
                                                  id_type))


def _listed(ids: object) -> object:
    """Generators become lists; anything else is checked as given."""
    if isinstance(ids, (str, bytes, Mapping)) or not isinstance(ids, Iterable):
        return ids
    return list(ids)
