"""Arguments to messages: what every call becomes, the same for both facades.

The guards check and normalise the arguments into a frozen snapshot on the caller's thread;
this module picks the destinations and the identity the idempotency guard de-duplicates by
(a caller's own event id; never the content, since a repeated state change is a new fact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .message import CUSTOMERIO, OPENCDP, Message, new_ulid

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Calls", "Queued"]

_message = tuple.__new__

Queued = tuple[Message, str | None]
"""A call's message and its identity for the idempotency guard (a caller's event id)."""


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
              event_id: object) -> Queued:
        uid, name, data, ts = self.guards.track(user_id, event, properties, timestamp)
        if event_id is None:
            # tuple.__new__ skips NamedTuple's argument handling: half the envelope's cost
            # on the hottest call.
            return _message(Message, (new_ulid(), "track", uid, name, data, ts,
                                      self.everywhere)), None
        mid = self.guards.event_id(event_id)
        return Message(mid, "track", uid, name, data, ts, self.everywhere), f"event:{mid}"

    def track_anonymous(self, anonymous_id: object, event: object, properties: object,
                        timestamp: object, event_id: object) -> Queued:
        destinations = self._cio_only("track_anonymous")
        aid, name, data, ts = self.guards.track_anonymous(anonymous_id, event, properties,
                                                          timestamp)
        mid = new_ulid() if event_id is None else self.guards.event_id(event_id)
        return (Message(mid, "track_anonymous", aid, name, data, ts, destinations),
                None if event_id is None else f"event:{mid}")

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
