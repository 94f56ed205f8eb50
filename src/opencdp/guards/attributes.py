"""Attributes and properties: JSON that every destination can store, at stable types.

The per-value work lives here and runs in ``Guards.inspect``: on the dispatcher thread for
background calls (the caller pays nothing for it), on the caller's thread in strict and
blocking modes. The walk copies a container only when something in it changes, so clean
data costs one pass and no allocation.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

import orjson

from ._core import Reporter, Rule
from .timestamps import MillisecondAttribute, datetime_seconds, is_time_attribute

__all__ = [
    "AttributeLimits",
    "AttributeTypeDrift",
    "EventDataTooLarge",
    "IdentifyWithoutEmail",
    "NonFiniteNumber",
    "NotJSONValue",
    "PropertiesNotMapping",
    "clean",
    "is_plain",
    "json_kind",
    "normalise",
]

MAX_ATTRIBUTES: Final = 300
MAX_NAME_BYTES: Final = 150
MAX_VALUE_BYTES: Final = 1000
MAX_EVENT_BYTES: Final = 100_000
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_MS_FLOOR: Final = 10**11
_UNITS: Final = ((10**17, 10**9), (10**14, 10**6), (_MS_FLOOR, 10**3))


class AttributeTypeDrift(Rule):
    """The same attribute sent as a string once and as a number (or bool, list...) later.

    Customer.io types an attribute by its values; mixed types break segment conditions
    (``plan = 1`` never matches ``"premium"``). Reported once per attribute name.
    """

    code = "OCDP130"
    severity = "warning"
    message = "attribute changed type since it was first sent; send one type per attribute"
    bad = ('client.identify("1", {"email": "a@example.com", "plan": "premium"})\n'
           'client.identify("2", {"email": "b@example.com", "plan": 1})',)
    good = ('client.identify("1", {"email": "a@example.com", "plan": "premium"})\n'
            'client.identify("2", {"email": "b@example.com", "plan": "basic"})',
            'client.identify("1", {"email": "a@example.com", "score": 1})\n'
            'client.identify("2", {"email": "b@example.com", "score": 2.5})')


class IdentifyWithoutEmail(Rule):
    """An identify call without ``email``: the person cannot receive email campaigns.

    Often intended (email known later, push-only users), so this is a debug-level hint by
    default; ``GuardPolicy(email_hint="warning")`` makes it a warning, ``"off"`` removes it.
    """

    code = "OCDP131"
    severity = "debug"
    message = "identify without an email attribute; include email for email campaigns"
    bad = ('client.identify("42", {"name": "Ada"})',)
    good = ('client.identify("42", {"email": "ada@example.com", "name": "Ada"})',)


class NotJSONValue(Rule):
    """A value JSON cannot carry (bytes, sets, Decimals, custom objects, non-string keys).

    Refused with the path of the bad value. ``datetime`` becomes Unix seconds, ``date`` an
    ISO date, ``UUID`` its text, an ``Enum`` its value and a tuple a list.
    """

    code = "OCDP132"
    severity = "error"
    message = "value is not JSON-serialisable; convert it to str, int, float, bool, list or dict"
    silenceable = False
    bad = ('client.track("42", "order_placed", {"total": Decimal("9.99")})',
           'client.track("42", "order_placed", {"items": [{"sku": b"A1"}]})')
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", {"total": 9.99, "items": [{"sku": "A1"}]})',)


class NonFiniteNumber(Rule):
    """NaN and Infinity are not JSON; most encoders emit invalid documents or fail later."""

    code = "OCDP133"
    severity = "error"
    message = "value is NaN or Infinity; send null or a finite number"
    silenceable = False
    bad = ('client.track("42", "order_placed", {"total": float("nan")})',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", {"total": None})',)


class PropertiesNotMapping(Rule):
    """Attributes and properties are a dict of named values, never a list or a string."""

    code = "OCDP134"
    severity = "error"
    message = "attributes/properties must be a dict (or a registered dataclass/model)"
    silenceable = False
    bad = ('client.track("42", "order_placed", ["A1", 2])',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", {"sku": "A1", "quantity": 2})',)


class AttributeLimits(Rule):
    """Customer.io's attribute limits: 300 attributes, names of 150 bytes, values of 1000.

    A person update over a limit is refused by Customer.io after the call returned, so it is
    refused here, before anything is queued, naming the attribute.
    """

    code = "OCDP135"
    severity = "error"
    message = "attribute over Customer.io's limits (300 attributes, name 150 B, value 1000 B)"
    silenceable = False
    bad = ('client.identify("42", {"email": "a@example.com", "bio": "x" * 1001})',
           'client.identify("42", {f"a{i}": i for i in range(301)})')
    good = ('client.identify("42", {"email": "a@example.com", "bio": "x" * 1000})',)


class EventDataTooLarge(Rule):
    """Customer.io refuses event data above 100,000 bytes (serialised)."""

    code = "OCDP136"
    severity = "error"
    message = "event data over 100,000 bytes; send ids and fetch details server-side"
    silenceable = False
    bad = ('client.track("42", "report_built", {"rows": ["x" * 1000] * 101})',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "report_built", {"report_id": "r-981", "rows": 101})',)


def json_kind(value: object) -> str | None:
    """The JSON type name a value is stored as (None for null, which never drifts)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return "array"


def is_plain(value: Any) -> bool:
    """Whether ``value`` is already plain, finite JSON (the common case, checked without
    building paths or copies)."""
    cls = value.__class__
    if cls is str or cls is bool or value is None:
        return True
    if cls is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    if cls is float:
        return bool(value - value == 0.0)  # False for NaN and the infinities
    if cls is dict:
        if not all(key.__class__ is str for key in value):
            return False
        items = value.values()
    elif cls is list:
        items = value
    else:
        return False
    for item in items:  # scalars inline: this runs once per value of every message
        cls = item.__class__
        if cls is str or cls is bool or item is None:
            continue
        if cls is float:
            if item - item != 0.0:
                return False
        elif cls is int:
            if not _INT_MIN <= item <= _INT_MAX:
                return False
        elif not is_plain(item):
            return False
    return True


def clean(value: Any, path: str, reporter: Reporter, time_names: bool = False) -> Any:
    """``normalise``, with a fast path for data that is already plain JSON.

    The common case, a flat dict of scalars, is checked in one pass (plain keys and values,
    and no millisecond number under a time-like name); anything else takes the full walk.
    """
    if value.__class__ is not dict:
        return value if is_plain(value) else normalise(value, path, reporter, time_names)
    for key, item in value.items():
        cls = item.__class__
        if key.__class__ is not str:
            break
        if cls is str or cls is bool or item is None:
            continue
        if cls is float:
            if item - item != 0.0:
                break
        elif cls is int:
            if not _INT_MIN <= item <= _INT_MAX:
                break
        elif is_plain(item):
            continue
        else:
            break
        if time_names and item >= _MS_FLOOR and is_time_attribute(key):
            break
    else:
        return value
    return normalise(value, path, reporter, time_names)


def normalise(value: Any, path: str, reporter: Reporter, time_names: bool = False) -> Any:
    """Return ``value`` as plain JSON data (the same object when nothing changes), or raise.

    With ``time_names``, a top-level key named like a time (``*_at``, ``*_time``,
    ``created``) holding milliseconds is converted to seconds.
    """
    cls = value.__class__
    if cls is str or value is None or cls is bool:
        return value
    if cls is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        raise reporter.refuse(NotJSONValue, path, f"{path} is an int outside 64 bits")
    if cls is float:
        if math.isfinite(value):
            return value
        raise reporter.refuse(NonFiniteNumber, path, f"{path} is {value}")
    if isinstance(value, Mapping):
        return _mapping(value, path, reporter, time_names)
    if cls is list or cls is tuple:
        out: list[Any] | None = None if cls is list else list(value)
        for i, item in enumerate(value):
            new = normalise(item, f"{path}[{i}]", reporter)
            if new is not item:
                if out is None:
                    out = list(value)
                out[i] = new
        return value if out is None else out
    if isinstance(value, datetime):
        return datetime_seconds(value, path, reporter)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return normalise(value.value, path, reporter)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return normalise(int(value), path, reporter)
    if isinstance(value, float):
        return normalise(float(value), path, reporter)
    raise reporter.refuse(NotJSONValue, path, f"{path} is {type(value).__name__}")


def _mapping(value: Mapping[Any, Any], path: str, reporter: Reporter,
             time_names: bool) -> Any:
    out: dict[str, Any] | None = None if value.__class__ is dict else dict(value)
    for key, item in value.items():
        if key.__class__ is not str and not isinstance(key, str):
            raise reporter.refuse(NotJSONValue, f"{path}[{key!r}]",
                                  f"{path} has a {type(key).__name__} key")
        where = f"{path}.{key}"
        new = normalise(item, where, reporter)
        if time_names and new.__class__ in (int, float) and new >= _MS_FLOOR \
                and is_time_attribute(key):
            new = _to_seconds(new, key, where, reporter)
        if new is not item:
            if out is None:
                out = dict(value)
            out[key] = new
    return value if out is None else out


def _to_seconds(value: float, key: str, where: str, reporter: Reporter) -> int:
    number = int(value)
    for floor, divisor in _UNITS:
        if number >= floor:
            converted = number // divisor
            reporter.warn(MillisecondAttribute, where, key,
                          f"{where}={number} converted to {converted}")
            return converted
    return number


def value_size(value: object) -> int:
    """Bytes of a value: UTF-8 text for strings, serialised JSON for anything else."""
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    return len(orjson.dumps(value))
