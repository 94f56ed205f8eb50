"""The guard object the client holds: every check of a call, on the caller's thread.

Each method validates a call in full and returns what the message is made of, data frozen
into a snapshot (see ``values``), so that nothing a destination's encoder would refuse gets
past the call, and every queue holds the same plain data. The common case stays cheap: an
event name checked once is a dict hit, an identified user id a set hit, and a flat dict of
plain values is checked in one loop and copied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from ._core import Finding, GuardPolicy, Reporter, Rule
from .arguments import check_device, check_event_id, check_merge
from .attributes import AttributeTypeDrift, IdentifyWithoutEmail, PropertiesNotMapping
from .events import (
    EventNameCardinality,
    PIIInEventName,
    check_event_name,
    pii_in_name,
    replay,
    top_families,
)
from .identifiers import TrackBeforeIdentify, check_identifier
from .timestamps import to_seconds
from .values import as_mapping, json_kind, snapshot

__all__ = ["Guards"]

_MAX_CACHED_NAMES: Final = 10_000
_SECONDS_BELOW: Final = 100_000_000_000


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
    """Validates and normalises every call; reports each distinct cause once per interval.

    ``report`` receives each ``Finding`` (warnings and hints; refusals raise
    ``ValidationError`` instead). ``counts()`` returns how often each code fired, silenced
    ones included. ``clock`` (monotonic seconds) paces repeated reports.
    """

    __slots__ = (
        "_attr_kinds",
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

    def __init__(self, policy: GuardPolicy, report: Callable[[Finding], None],
                 clock: Callable[[], float] | None = None) -> None:
        self._policy = policy
        self._reporter = Reporter(policy, report) if clock is None \
            else Reporter(policy, report, clock)
        self._email_hint = policy.email_hint
        self._max_events = policy.max_event_names
        self._schemas = policy.schemas
        self._events: dict[str, str] = {}
        self._dirty_events: dict[str, tuple[str, tuple[type[Rule], ...], str | None]] = {}
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

    def relax(self, codes: Iterable[str]) -> None:
        """Add ``codes`` to the policy's ``lenient`` set, before the first call.

        For a facade that builds its client first and then learns what the SDK it stands in
        for never enforced (``opencdp.compat``); the engine keeps building the policy alone.
        """
        self._policy = dataclasses.replace(self._policy,
                                           lenient=self._policy.lenient | frozenset(codes))
        self._reporter.relax(self._policy.lenient)

    # -- identify and track ------------------------------------------------------------------

    def identify(
        self,
        user_id: object,
        attributes: object,
        timestamp: object,
        anonymous_id: object = None,
    ) -> tuple[str, dict[str, Any] | None, int | None]:
        """Check an identify call: ``(user id, attributes snapshot or None, timestamp)``.

        ``anonymous_id`` is folded into the attributes: Customer.io merges the anonymous
        profile when an identify carries it as an attribute, so this is the one place it
        needs to live.
        """
        rep = self._reporter
        uid = check_identifier(user_id, "user_id", rep)
        attrs = None if attributes is None else \
            self._data(attributes, "attributes", "identify", None)
        if anonymous_id is not None:
            anon = check_identifier(anonymous_id, "anonymous_id", rep)
            if attrs is None:
                attrs = {}
            attrs["anonymous_id"] = anon
        if self._email_hint != "off" and (attrs is None or "email" not in attrs):
            rep.warn(IdentifyWithoutEmail, "attributes", "", "", severity=self._email_hint)
        if attrs:
            self._drift(attrs)
        ts = None if timestamp is None else to_seconds(timestamp, "timestamp", rep)
        self._identified.add(uid)
        return uid, attrs, ts

    def track(
        self, user_id: object, event: object, properties: object, timestamp: object
    ) -> tuple[str, str, dict[str, Any] | None, int | None]:
        """Check a track call for a known person: ``(user id, name, snapshot, timestamp)``."""
        if type(user_id) is not str or user_id not in self._identified.young:
            user_id = self._track_user(user_id)
        try:
            name = self._events[event]  # type: ignore[index]
        except (KeyError, TypeError):
            name = self._event(event)
        if properties is not None:
            if type(properties) is dict and self._schemas is None:
                properties = snapshot(properties, "properties",
                                      self._reporter, True)
            else:
                properties = self._data(properties, "properties", "track", name)
        if timestamp is not None and (
            type(timestamp) is not int or not 0 <= timestamp < _SECONDS_BELOW
        ):
            timestamp = to_seconds(timestamp, "timestamp", self._reporter)
        return user_id, name, properties, timestamp

    def track_anonymous(
        self, anonymous_id: object, event: object, properties: object, timestamp: object
    ) -> tuple[str, str, dict[str, Any] | None, int | None]:
        """Check a track call for a visitor known only by an anonymous id."""
        anon = check_identifier(anonymous_id, "anonymous_id", self._reporter)
        try:
            name = self._events[event]  # type: ignore[index]
        except (KeyError, TypeError):
            name = self._event(event)
        data = None if properties is None else \
            self._data(properties, "properties", "track_anonymous", name)
        ts = None if timestamp is None else to_seconds(timestamp, "timestamp", self._reporter)
        return anon, name, data, ts

    # -- the other calls ---------------------------------------------------------------------

    def event_id(self, value: object) -> int:
        """A caller's ``event_id`` (ULID text) as the 128-bit message id."""
        return check_event_id(value, self._reporter)

    def device(
        self, user_id: object, device_id: object, platform: object, fields: object
    ) -> tuple[str, str, dict[str, Any]]:
        """Check ``register_device``: ``(user id, device id, device data snapshot)``.

        ``fields`` holds the call's keyword arguments (push tokens, ``attributes``,
        ``last_used``...); None values are dropped and ``platform`` is added.
        """
        return check_device(user_id, device_id, platform, fields, self._reporter)

    def merge(self, primary: object, secondary: object
              ) -> tuple[str, dict[str, dict[str, str]]]:
        """Check ``merge_people``: ``(label, {"primary": {...}, "secondary": {...}})``."""
        return check_merge(primary, secondary, self._reporter)

    def identifier(self, value: object, field: str = "user_id") -> str:
        """Check an id used by devices, suppress, delete and merge."""
        return check_identifier(value, field, self._reporter)

    def timestamp(self, value: object, field: str = "timestamp") -> int | None:
        """A datetime or Unix seconds as Unix seconds (ms/µs converted and warned)."""
        return to_seconds(value, field, self._reporter)

    # -- internals ---------------------------------------------------------------------------

    def _data(self, value: object, field: str, kind: str, name: str | None) -> dict[str, Any]:
        rep = self._reporter
        if type(value) is dict:
            mapping: Mapping[Any, Any] = value
        else:
            try:
                found = as_mapping(value)
            except Exception as exc:  # a model whose dump fails is the caller's bad input
                raise rep.refuse(PropertiesNotMapping, field, f"{field} could not be read "
                                 f"({type(exc).__name__})") from None
            if found is None:
                raise rep.refuse(PropertiesNotMapping, field,
                                 f"{field} is {type(value).__name__}")
            mapping = found
        if self._schemas is not None:
            self._schemas.check(kind, name, mapping, rep)
        if type(mapping) is not dict:
            try:
                mapping = dict(mapping.items())
            except Exception as exc:
                raise rep.refuse(PropertiesNotMapping, field, f"{field} could not be read "
                                 f"({type(exc).__name__})") from None
        return snapshot(mapping, field, rep, True)

    def _drift(self, attrs: dict[str, Any]) -> None:
        kinds = self._attr_kinds
        for name, value in attrs.items():
            jk = json_kind(value)
            if jk is None:
                continue
            first = kinds.get(name)
            if first is None:
                if len(kinds) < _MAX_CACHED_NAMES:
                    kinds[name] = jk
            elif first != jk:
                self._reporter.warn(AttributeTypeDrift, f"attributes.{name}", name,
                                    f"attributes.{name} was {first}, now {jk}")

    def _track_user(self, user_id: object) -> str:
        uid = check_identifier(user_id, "user_id", self._reporter)
        if uid not in self._identified:
            self._reporter.warn(TrackBeforeIdentify, "user_id", "")
        return uid

    def _event(self, event: object) -> str:
        dirty = self._dirty_events.get(event) if isinstance(event, str) else None
        if dirty is not None:
            name, rules, pii = dirty
            for rule in rules:
                replay(rule, name, self._reporter, pii)
            return name
        name, rules = check_event_name(event, self._reporter)
        seen = self._seen_events
        if name not in seen:
            if len(seen) < _MAX_CACHED_NAMES:
                seen[name] = None
            if len(seen) > self._max_events:
                self._cardinality(len(seen))
        if len(self._events) + len(self._dirty_events) < _MAX_CACHED_NAMES:
            if rules:
                pii = pii_in_name(name) if PIIInEventName in rules else None
                self._dirty_events[event] = (name, rules, pii)  # type: ignore[index]
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
