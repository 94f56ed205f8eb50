"""The guard object the client holds: cheap call-time checks plus a deep ``inspect``.

Call-time methods run on the caller's thread and must stay within a fraction of a
microsecond for the common case, so each of them tests a cache first: an event name checked
once is a dict hit, an identified user id a set hit. Everything per value (JSON-ability,
NaN, time attributes, type drift, sizes, schemas) waits for ``inspect``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..message import CUSTOMERIO, Message
from ._core import Finding, GuardPolicy, Reporter, Rule
from .attributes import (
    MAX_ATTRIBUTES,
    MAX_EVENT_BYTES,
    MAX_NAME_BYTES,
    MAX_VALUE_BYTES,
    AttributeLimits,
    AttributeTypeDrift,
    EventDataTooLarge,
    IdentifyWithoutEmail,
    PropertiesNotMapping,
    clean,
    json_kind,
    value_size,
)
from .events import EventNameCardinality, check_event_name, replay, top_families
from .identifiers import TrackBeforeIdentify, check_identifier
from .timestamps import to_seconds

__all__ = ["Guards"]

_MAX_CACHED_NAMES: Final = 10_000
_DATA_KINDS: Final = frozenset({"identify", "track", "track_anonymous"})


class _Remembered:
    """A bounded set: two generations, the older dropped when the younger fills."""

    __slots__ = ("_cap", "old", "young")

    def __init__(self, capacity: int) -> None:
        self._cap = max(capacity // 2, 1)
        self.young: set[str] = set()
        self.old: set[str] = set()

    def __contains__(self, item: str) -> bool:
        if item in self.young:
            return True
        if item in self.old:
            self.add(item)
            return True
        return False

    def add(self, item: str) -> None:
        self.young.add(item)
        if len(self.young) >= self._cap:
            self.old, self.young = self.young, set()


class Guards:
    """Validates and normalises every call; reports each distinct cause once.

    ``report`` receives each ``Finding`` (warnings and hints; refusals raise
    ``ValidationError`` instead). ``counts()`` returns how often each code fired, silenced
    ones included.
    """

    __slots__ = (
        "_attr_kinds",
        "_cio",
        "_dirty_events",
        "_email_hint",
        "_events",
        "_identified",
        "_max_events",
        "_policy",
        "_reported_cardinality",
        "_reporter",
        "_schemas",
        "_seen_events",
    )

    def __init__(self, policy: GuardPolicy, report: Callable[[Finding], None]) -> None:
        self._policy = policy
        self._reporter = Reporter(policy, report)
        self._cio = policy.customerio_limits
        self._email_hint = policy.email_hint
        self._max_events = policy.max_event_names
        self._schemas = policy.schemas
        self._events: dict[str, str] = {}
        self._dirty_events: dict[str, tuple[str, tuple[type[Rule], ...]]] = {}
        self._seen_events: dict[str, None] = {}
        self._reported_cardinality = False
        self._identified = _Remembered(policy.remember_ids)
        self._attr_kinds: dict[str, str] = {}

    @property
    def policy(self) -> GuardPolicy:
        return self._policy

    def counts(self) -> dict[str, int]:
        """Warnings and refusals by code since construction, for ``health()``."""
        return self._reporter.counts()

    # -- call time ---------------------------------------------------------------------------

    def identify(
        self,
        user_id: object,
        attributes: object,
        timestamp: object,
        anonymous_id: object = None,
    ) -> tuple[str, dict[str, Any] | None, int | None]:
        """Check an identify call; ``anonymous_id`` is folded into the attributes.

        Customer.io merges the anonymous profile when an identify carries ``anonymous_id``
        as an attribute, so this is the one place it needs to live.
        """
        rep = self._reporter
        uid = check_identifier(user_id, "user_id", rep, self._cio)
        attrs: dict[str, Any] | None
        if attributes is None or isinstance(attributes, dict):
            attrs = attributes
        else:
            attrs = self._mapping(attributes, "attributes")
        if anonymous_id is not None:
            anon = check_identifier(anonymous_id, "anonymous_id", rep, self._cio)
            attrs = {**(attrs or {}), "anonymous_id": anon}
        if attrs is not None and len(attrs) > MAX_ATTRIBUTES:
            raise rep.refuse(AttributeLimits, "attributes", f"{len(attrs)} attributes")
        if self._email_hint != "off" and (attrs is None or "email" not in attrs):
            rep.warn(IdentifyWithoutEmail, "attributes", "", "", severity=self._email_hint)
        ts = None if timestamp is None else to_seconds(timestamp, "timestamp", rep)
        self._identified.add(uid)
        return uid, attrs, ts

    def track(
        self, user_id: object, event: object, properties: object, timestamp: object
    ) -> tuple[str, str, dict[str, Any] | None, int | None]:
        """Check a track call for a known person."""
        if user_id.__class__ is not str or user_id not in self._identified.young:
            user_id = self._track_user(user_id)
        try:
            name = self._events[event]  # type: ignore[index]
        except (KeyError, TypeError):
            name = self._event(event)
        if properties is not None and properties.__class__ is not dict:
            properties = self._mapping(properties, "properties")
        if timestamp is not None and (
            timestamp.__class__ is not int or not 0 <= timestamp < 100_000_000_000
        ):
            timestamp = to_seconds(timestamp, "timestamp", self._reporter)
        return user_id, name, properties, timestamp

    def track_anonymous(
        self, anonymous_id: object, event: object, properties: object, timestamp: object
    ) -> tuple[str, str, dict[str, Any] | None, int | None]:
        """Check a track call for a visitor known only by an anonymous id."""
        anon = check_identifier(anonymous_id, "anonymous_id", self._reporter, self._cio)
        try:
            name = self._events[event]  # type: ignore[index]
        except (KeyError, TypeError):
            name = self._event(event)
        if properties is not None and properties.__class__ is not dict:
            properties = self._mapping(properties, "properties")
        ts = None if timestamp is None else to_seconds(timestamp, "timestamp", self._reporter)
        return anon, name, properties, ts

    def identifier(self, value: object, field: str = "user_id") -> str:
        """Check an id used by devices, suppress, delete and merge."""
        return check_identifier(value, field, self._reporter, self._cio)

    def timestamp(self, value: object, field: str = "timestamp") -> int | None:
        """A datetime or Unix seconds as Unix seconds (ms/µs converted and warned)."""
        return to_seconds(value, field, self._reporter)

    def _track_user(self, user_id: object) -> str:
        uid = check_identifier(user_id, "user_id", self._reporter, self._cio)
        if uid not in self._identified:
            self._reporter.warn(TrackBeforeIdentify, "user_id", uid)
        return uid

    def _event(self, event: object) -> str:
        dirty = self._dirty_events.get(event) if isinstance(event, str) else None
        if dirty is not None:
            name, rules = dirty
            for rule in rules:
                replay(rule, name, self._reporter)
            return name
        name, rules = check_event_name(event, self._reporter, self._cio)
        seen = self._seen_events
        if name not in seen:
            if len(seen) < _MAX_CACHED_NAMES:
                seen[name] = None
            if len(seen) > self._max_events:
                self._cardinality(len(seen))
        if len(self._events) + len(self._dirty_events) < _MAX_CACHED_NAMES:
            if rules:
                self._dirty_events[event] = (name, rules)  # type: ignore[index]
            else:
                self._events[event] = name  # type: ignore[index]
        return name

    def _cardinality(self, distinct: int) -> None:
        # The family summary walks every name, so it is built only for the one report.
        detail = f"{distinct} distinct names"
        if not self._reported_cardinality:
            self._reported_cardinality = True
            detail += f", most from {top_families(list(self._seen_events))}"
        self._reporter.warn(EventNameCardinality, "event", "", detail)

    def _mapping(self, value: object, field: str) -> dict[str, Any]:
        if isinstance(value, Mapping):
            return dict(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            data = dump(mode="python")
            if isinstance(data, dict):
                return data
        raise self._reporter.refuse(PropertiesNotMapping, field,
                                    f"{field} is {type(value).__name__}")

    # -- dispatcher time ---------------------------------------------------------------------

    def inspect(self, message: Message) -> Message:
        """Deep-check a message's data; return a normalised copy (or the same message)."""
        data = message.data
        if data is None:
            return message
        rep = self._reporter
        kind = message.kind
        field = "attributes" if kind == "identify" else "properties" \
            if kind in _DATA_KINDS else "data"
        if self._schemas is not None:
            self._schemas.check(kind, message.name, data, rep)
        new = clean(data, field, rep, time_names=kind in _DATA_KINDS)
        if kind == "identify":
            self._attributes(new, message.targets(CUSTOMERIO))
        elif kind in _DATA_KINDS and message.targets(CUSTOMERIO):
            size = value_size(new)
            if size > MAX_EVENT_BYTES:
                raise rep.refuse(EventDataTooLarge, field, f"event data is {size} bytes")
        return message if new is data else message._replace(data=new)

    def _attributes(self, attrs: Mapping[str, Any], limits: bool) -> None:
        rep = self._reporter
        kinds = self._attr_kinds
        if limits and len(attrs) > MAX_ATTRIBUTES:
            raise rep.refuse(AttributeLimits, "attributes", f"{len(attrs)} attributes")
        for name, value in attrs.items():
            if limits:
                if len(name) > MAX_NAME_BYTES // 4 and \
                        len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
                    raise rep.refuse(AttributeLimits, f"attributes.{name[:40]}",
                                     "attribute name over 150 bytes")
                if (len(value) > MAX_VALUE_BYTES // 4 if value.__class__ is str
                        else isinstance(value, (dict, list))):
                    size = value_size(value)
                    if size > MAX_VALUE_BYTES:
                        raise rep.refuse(AttributeLimits, f"attributes.{name}",
                                         f"attributes.{name} is {size} bytes")
            jk = json_kind(value)
            if jk is None:
                continue
            first = kinds.get(name)
            if first is None:
                if len(kinds) < _MAX_CACHED_NAMES:
                    kinds[name] = jk
            elif first != jk:
                rep.warn(AttributeTypeDrift, f"attributes.{name}", name,
                         f"attributes.{name} was {first}, now {jk}")
