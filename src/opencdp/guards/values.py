"""The snapshot: a call's data validated in full, normalised once, and copied.

Every queue (memory, SQLite, Redis) stores what this returns and every encoder serialises it,
so the bytes that reach each platform cannot depend on the queue, on when the encoder runs, or
on what the caller does with its own dicts after the call. The result holds only ``dict``
(string keys), ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``, nested at most
``MAX_DEPTH`` containers deep, and always shares no container with the input.

The rules, applied at any depth:

- ``datetime`` -> Unix seconds (int); a naive one is read as UTC with a warning (OCDP102).
- ``date`` -> ISO text (``"2024-01-31"``); ``UUID`` -> its text; ``Enum`` -> its value,
  normalised in turn; tuple -> list; a ``str``/``int``/``float`` subclass -> the plain value.
- ``Decimal`` -> int when integral, else the float with the same decimal value; a value a
  float would round is refused (OCDP132), as are NaN/Infinity (OCDP133).
- a ``Mapping``, dataclass instance or model (``model_dump``) -> dict.
- a top-level number of 10^11 or more (up to 10^20) under a time-like name (``*_at``,
  ``*_time``, ``created``) -> seconds, with a warning (OCDP104); only for identify and track,
  and kept as sent when the policy makes OCDP104 lenient.
- refused, naming the path: lone surrogates in text or keys (OCDP156), nesting deeper than
  ``MAX_DEPTH`` or a container holding itself (OCDP157), non-string keys, integers outside
  -2^63..2^64-1, bytes, sets, and every other type (OCDP132), NaN and Infinity (OCDP133).

The common case, a flat dict of ASCII text, small ints, finite floats, bools and None, is
checked in one loop and copied with ``dict(...)``; everything else takes the full walk.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

import orjson

from ._core import Reporter
from .attributes import DataTooDeep, NonFiniteNumber, NotJSONValue, UnencodableText
from .timestamps import MillisecondAttribute, datetime_seconds, is_time_attribute

__all__ = ["MAX_DEPTH", "as_mapping", "json_kind", "snapshot", "value_size"]

MAX_DEPTH: Final = 32
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
MS_FLOOR: Final = 10**11
MS_CEILING: Final = 10**20
_UNITS: Final = ((10**17, 10**9), (10**14, 10**6), (MS_FLOOR, 10**3))


def snapshot(value: dict[str, Any], path: str, reporter: Reporter,
             time_names: bool = False) -> dict[str, Any]:
    """A fresh, plain, encodable copy of the dict ``value``, or ``ValidationError``.

    ``path`` names the argument in errors (``"properties"``; empty for keyword fields).
    """
    # Numbers of 10^11 and more take the full walk: they may be milliseconds under a time name.
    for key, item in value.items():
        if type(key) is not str:
            break
        cls = type(item)
        if cls is str:
            if item.isascii():
                continue
        elif cls is int:
            if -9223372036854775808 <= item < 100000000000:
                continue
        elif cls is float:
            if -1.7976931348623157e308 <= item < 1e11:  # False for NaN and the infinities
                continue
        elif item is None or cls is bool:
            continue
        break
    else:
        if "".join(value).isascii():
            return dict(value)
    return _dict(value.items(), path, reporter, 1, time_names)


def as_mapping(value: object) -> Mapping[Any, Any] | None:
    """``value`` as a mapping when it is one, a dataclass instance or a model; else None."""
    kind = type(value)
    if issubclass(kind, Mapping):
        return value  # type: ignore[return-value]
    if dataclasses.is_dataclass(kind) and not issubclass(kind, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(kind)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        data = dump(mode="python")
        if issubclass(type(data), Mapping):
            return data  # type: ignore[no-any-return]
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _text(value: str, path: str, reporter: Reporter) -> str:
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise reporter.refuse(UnencodableText, path, f"{path or 'text'} has a lone surrogate"
                              ) from None
    return value


def _dict(items: Any, path: str, reporter: Reporter, depth: int,
          time_names: bool = False) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise reporter.refuse(DataTooDeep, path, f"{path or 'data'} is nested too deep")
    out: dict[str, Any] = {}
    try:
        pairs = list(items)
    except Exception as exc:  # a caller's Mapping whose iteration fails
        raise reporter.refuse(NotJSONValue, path,
                              f"{path or 'data'} could not be read ({type(exc).__name__})"
                              ) from None
    for raw, item in pairs:
        if type(raw) is str:
            key: str = raw
        elif issubclass(type(raw), str):
            key = str.__str__(raw)
        else:
            raise reporter.refuse(NotJSONValue, path or None,
                                  f"{path or 'data'} has a key of type {type(raw).__name__}")
        if not key.isascii():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                where = _join(path, key.encode("ascii", "backslashreplace").decode("ascii"))
                raise reporter.refuse(UnencodableText, where,
                                      f"a key of {path or 'data'} has a lone surrogate"
                                      ) from None
        where = _join(path, key)
        new = _value(item, where, reporter, depth)
        if time_names and type(new) in (int, float) and MS_FLOOR <= new < MS_CEILING \
                and is_time_attribute(key):
            new = _to_seconds(new, key, where, reporter)
        out[key] = new
    return out


def _value(value: Any, path: str, reporter: Reporter, depth: int) -> Any:
    cls = type(value)
    if cls is str:
        return _text(value, path, reporter)
    if value is None or cls is bool:
        return value
    if cls is int:
        if INT_MIN <= value <= INT_MAX:
            return value
        raise reporter.refuse(NotJSONValue, path, f"{path} is an int outside 64 bits")
    if cls is float:
        if value - value == 0.0:
            return value
        raise reporter.refuse(NonFiniteNumber, path, f"{path} is {value}")
    if cls is dict:
        return _dict(value.items(), path, reporter, depth + 1)
    if cls is list or cls is tuple:
        if depth + 1 > MAX_DEPTH:
            raise reporter.refuse(DataTooDeep, path, f"{path} is nested too deep")
        return [_value(item, f"{path}[{i}]", reporter, depth + 1)
                for i, item in enumerate(value)]
    return _other(value, path, reporter, depth)


def _other(value: Any, path: str, reporter: Reporter, depth: int) -> Any:
    # Classes are tested with type(), never isinstance(): a mock or proxy that claims to be
    # a str through __class__ must not pass for one.
    kind = type(value)
    if issubclass(kind, enum.Enum):
        return _value(value.value, path, reporter, depth)
    if issubclass(kind, datetime):
        return datetime_seconds(value, path, reporter)
    if issubclass(kind, date):
        return value.isoformat()
    if issubclass(kind, uuid.UUID):
        return str(value)
    if issubclass(kind, Decimal):
        return _decimal(value, path, reporter)
    if issubclass(kind, str):
        return _text(str.__str__(value), path, reporter)
    if issubclass(kind, int) and kind is not bool:
        return _value(int.__int__(value), path, reporter, depth)
    if issubclass(kind, float):
        return _value(float.__float__(value), path, reporter, depth)
    if issubclass(kind, (list, tuple)):
        return _value(list(value), path, reporter, depth)
    if not issubclass(kind, (bytes, bytearray, memoryview, set, frozenset, type)):
        try:
            mapping = as_mapping(value)
        except Exception as exc:
            raise reporter.refuse(NotJSONValue, path, f"{path} could not be read "
                                  f"({type(exc).__name__})") from None
        if mapping is not None:
            return _dict(mapping.items(), path, reporter, depth + 1)
    raise reporter.refuse(NotJSONValue, path, f"{path} is {kind.__name__}")


def _decimal(value: Decimal, path: str, reporter: Reporter) -> int | float:
    if not value.is_finite():
        raise reporter.refuse(NonFiniteNumber, path, f"{path} is {value}")
    if value == value.to_integral_value():
        if value.adjusted() > 25:  # far outside 64 bits; never build the int
            raise reporter.refuse(NotJSONValue, path, f"{path} is a Decimal outside 64 bits")
        number = int(value)
        if INT_MIN <= number <= INT_MAX:
            return number
        raise reporter.refuse(NotJSONValue, path, f"{path} is a Decimal outside 64 bits")
    approx = float(value)
    if math.isfinite(approx) and Decimal(repr(approx)) == value:
        return approx
    raise reporter.refuse(NotJSONValue, path,
                          f"{path} is a Decimal a JSON number would round; send it as str")


def _to_seconds(value: float, key: str, where: str, reporter: Reporter) -> float:
    """Seconds for a time attribute sent in ms/µs/ns; the value itself when lenient."""
    number = int(value)
    for floor, divisor in _UNITS:
        if number >= floor:
            if reporter.lenient(MillisecondAttribute):
                reporter.warn(MillisecondAttribute, where, key,
                              f"{where}={number} is not in seconds, sent as it is")
                return value
            converted = number // divisor
            reporter.warn(MillisecondAttribute, where, key,
                          f"{where}={number} converted to {converted}")
            return converted
    return number  # pragma: no cover - callers pass numbers >= MS_FLOOR


def json_kind(value: object) -> str | None:
    """The JSON type name a snapshot value is stored as (None for null, which never drifts)."""
    cls = type(value)
    if value is None:
        return None
    if cls is bool:
        return "boolean"
    if cls is int or cls is float:
        return "number"
    if cls is str:
        return "string"
    if cls is dict:
        return "object"
    return "array"


def value_size(value: object) -> int:
    """Bytes of a snapshot value: UTF-8 text for strings, serialised JSON for anything else."""
    if type(value) is str:
        text: str = value
        return len(text) if text.isascii() else len(text.encode("utf-8"))
    return len(orjson.dumps(value))
