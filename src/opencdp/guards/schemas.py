"""An optional typed taxonomy: one schema per event name, and one for person attributes.

A schema is a ``TypedDict``, a dataclass or a pydantic model. Registering one returns an
``Event[P]``: a ``str`` at runtime (so the guards, the envelope and every destination see a
plain event name) that carries its property type ``P`` for type checkers. A client method
overloaded on ``Event[P]`` then checks ``client.track(uid, ORDER_PLACED, OrderPlaced(...))``
statically, and this module checks the data again at runtime. Properties for a typed event are
built with the schema's constructor (or held in a variable annotated with it): mypy does not
infer a TypedDict from a bare dict literal in a generic call, and reports "cannot infer".

TypedDicts and dataclasses are checked by a small structural checker written here (plain
``isinstance`` per annotation, unions, ``Literal``, lists and dicts, nested schemas) rather
than through pydantic or jsonschema, because neither is a dependency of the SDK; pydantic
models are validated by pydantic itself (duck-typed via ``model_validate``, never imported).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

from ..errors import ConfigurationError
from ._core import Reporter, Rule

__all__ = ["Event", "SchemaMismatch", "Schemas", "UnregisteredEvent"]

P = TypeVar("P")
_POSITION = re.compile(r"\[\d+\]|(?<=\.)\d+(?=[.:])")
_Check = Callable[[Any, str, list[str]], None]


_ORDER = ("class OrderPlaced(TypedDict):\n"
          "    order_id: str\n"
          "    total: float\n\n")


class SchemaMismatch(Rule):
    """Event properties or person attributes that do not match their registered schema.

    Warned once per event (or attribute) and problem; refused in strict mode or when the
    registry is built with ``Schemas(refuse=True)``.
    """

    code = "OCDP170"
    severity = "warning"
    message = "data does not match the registered schema; fix the call or the schema"
    bad = (_ORDER + 'schemas = Schemas()\n'
           'schemas.event("order_placed", OrderPlaced)\n'
           'client = Client(..., schemas=schemas)\n'
           'client.identify("42", {"email": "a@example.com"})\n'
           'client.track("42", "order_placed", {"order_id": "A1", "total": "9.99"})',)
    good = (_ORDER + 'schemas = Schemas()\n'
            'ORDER_PLACED = schemas.event("order_placed", OrderPlaced)\n'
            'client = Client(..., schemas=schemas)\n'
            'client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", ORDER_PLACED, OrderPlaced(order_id="A1", total=9.99))',)


class UnregisteredEvent(Rule):
    """An event name outside a closed taxonomy (``Schemas(closed=True)``)."""

    code = "OCDP171"
    severity = "warning"
    message = "event name is not registered in the closed taxonomy; register it or fix the name"
    bad = (_ORDER + 'schemas = Schemas(closed=True)\n'
           'schemas.event("order_placed", OrderPlaced)\n'
           'client = Client(..., schemas=schemas)\n'
           'client.identify("42", {"email": "a@example.com"})\n'
           'client.track("42", "order_shipped", {"order_id": "A1"})',)
    good = (_ORDER + 'schemas = Schemas(closed=True)\n'
            'schemas.event("order_placed", OrderPlaced)\n'
            'client = Client(..., schemas=schemas)\n'
            'client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", {"order_id": "A1", "total": 9.99})',)


if TYPE_CHECKING:

    class Event(Generic[P]):
        """An event name bound to its property schema ``P``.

        Type checkers see a class that is *not* a ``str``, so that a client method overloaded
        as ``track(user_id, event: Event[P], properties: P)`` / ``track(user_id, event: str,
        properties: Mapping | None)`` cannot fall through to the untyped overload when the
        properties do not match ``P``. At runtime it is a ``str``.
        """

        schema: type[P]

        def __new__(cls, name: str, schema: type[P]) -> Event[P]: ...

else:

    class Event(str, Generic[P]):
        """An event name bound to its property schema ``P``; equal to and hashed as the name."""

        def __new__(cls, name: str, schema: type[P]) -> Event[P]:
            self = super().__new__(cls, name)
            self.schema = schema
            return self

        def __reduce__(self) -> tuple[Any, ...]:
            return (Event, (str(self), self.schema))


class Schemas:
    """A registry of event schemas (and optionally one attribute schema) for ``GuardPolicy``.

    ``refuse`` refuses mismatching data instead of warning; ``closed`` warns about event
    names that are not registered. Attribute schemas check the types of the attributes an
    identify call carries (identify is a partial update, so none is required); event schemas
    require their required keys and flag unknown ones.
    """

    def __init__(self, *, refuse: bool = False, closed: bool = False) -> None:
        self.refuse = refuse
        self.closed = closed
        self._events: dict[str, tuple[type[Any], Callable[[Any], list[str]]]] = {}
        self._attributes: Callable[[Any], list[str]] | None = None

    def event(self, name: str, schema: type[P]) -> Event[P]:
        """Register ``schema`` for event ``name``; returns the typed name to track with."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError("an event schema needs a non-empty name")
        self._events[name] = (schema, _compile_root(schema, partial=False))
        return Event(name.strip(), schema)

    def attributes(self, schema: type[Any]) -> None:
        """Register the person attribute schema used to check identify calls."""
        self._attributes = _compile_root(schema, partial=True)

    def names(self) -> frozenset[str]:
        return frozenset(self._events)

    def problems(self, kind: str, name: str | None, data: Any) -> list[str]:
        """What is wrong with ``data`` for this call (empty when it matches or is unchecked)."""
        if kind == "identify":
            return [] if self._attributes is None else self._attributes(data)
        if name is None:
            return []
        entry = self._events.get(name)
        return [] if entry is None else entry[1](data)

    def check(self, kind: str, name: str | None, data: Any, reporter: Reporter) -> Any:
        """Report (or refuse) mismatches; return ``data`` unchanged."""
        if kind in ("track", "track_anonymous") and name is not None and self.closed \
                and name not in self._events:
            reporter.warn(UnregisteredEvent, "event", name, f"event {name!r}")
        problems = self.problems(kind, name, data)
        if problems:
            where = "attributes" if kind == "identify" else f"event {name!r}"
            detail = f"{where}: {'; '.join(problems[:5])}"
            field = "attributes" if kind == "identify" else "properties"
            if self.refuse:
                raise reporter.refuse(SchemaMismatch, field, detail)
            # One cause per problem, whatever the list positions it was found at.
            cause = _POSITION.sub("[]", f"{where}:{problems[0]}")
            reporter.warn(SchemaMismatch, field, cause, detail)
        return data


def _compile_root(schema: type[Any], partial: bool) -> Callable[[Any], list[str]]:
    if callable(getattr(schema, "model_validate", None)):
        return _pydantic(schema)
    if not (typing.is_typeddict(schema) or dataclasses.is_dataclass(schema)):
        raise ConfigurationError(
            f"a schema is a TypedDict, a dataclass or a pydantic model, not {schema!r}")
    check = _record(schema, partial)

    def run(data: Any) -> list[str]:
        problems: list[str] = []
        check(data, "", problems)
        return problems

    return run


def _pydantic(model: Any) -> Callable[[Any], list[str]]:
    def run(data: Any) -> list[str]:
        try:
            model.model_validate(data)
        except Exception as exc:  # a validator's own exception is a mismatch, not a crash
            errors = getattr(exc, "errors", None)
            if not callable(errors):
                return [f"the model refused the data ({type(exc).__name__})"]
            return [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in errors()]
        return []

    return run


def _record(schema: type[Any], partial: bool) -> _Check:
    try:
        hints = typing.get_type_hints(schema)
    except Exception as exc:
        raise ConfigurationError(f"cannot resolve the annotations of {schema!r}: {exc}") from exc
    if typing.is_typeddict(schema):
        required = set() if partial else set(getattr(schema, "__required_keys__", ()))
    else:
        required = set() if partial else {
            f.name for f in dataclasses.fields(schema)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
    fields: dict[str, _Check] = {}
    known = set(hints)
    pending = dict(hints)

    def check(value: Any, path: str, problems: list[str]) -> None:
        if not fields and pending:
            for key, hint in pending.items():
                fields[key] = _compile(hint)
            pending.clear()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if not isinstance(value, Mapping):
            problems.append(f"{path or 'data'} should be an object")
            return
        for key in sorted(required - value.keys()):
            problems.append(f"{_join(path, key)} is missing")
        for key, item in value.items():
            checker = fields.get(key)
            if checker is None:
                if not partial and key not in known:
                    problems.append(f"{_join(path, key)} is not in the schema")
                continue
            checker(item, _join(path, key), problems)

    return check


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _compile(hint: Any) -> _Check:
    if hint is Any or hint is object:
        return lambda value, path, problems: None
    if hint is None or hint is type(None):
        return _instance((type(None),), "null")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        options = [_compile(a) for a in args]
        label = " | ".join(_label(a) for a in args)

        def union(value: Any, path: str, problems: list[str]) -> None:
            for option in options:
                trial: list[str] = []
                option(value, path, trial)
                if not trial:
                    return
            problems.append(f"{path} should be {label}, got {type(value).__name__}")

        return union
    if origin is typing.Literal:
        allowed = args

        def literal(value: Any, path: str, problems: list[str]) -> None:
            if value not in allowed or isinstance(value, bool) != any(
                    isinstance(a, bool) for a in allowed if a == value):
                problems.append(f"{path} should be one of {list(allowed)!r}")

        return literal
    if origin in (list, Sequence, tuple, set, frozenset) or hint in (list, tuple):
        item = _compile(args[0]) if args else _compile(Any)

        def sequence(value: Any, path: str, problems: list[str]) -> None:
            if not isinstance(value, (list, tuple)):
                problems.append(f"{path} should be a list, got {type(value).__name__}")
                return
            for i, element in enumerate(value):
                item(element, f"{path}[{i}]", problems)

        return sequence
    if origin in (dict, Mapping) or hint is dict:
        item = _compile(args[1]) if len(args) == 2 else _compile(Any)

        def mapping(value: Any, path: str, problems: list[str]) -> None:
            if not isinstance(value, Mapping):
                problems.append(f"{path} should be an object, got {type(value).__name__}")
                return
            for key, element in value.items():
                item(element, _join(path, key), problems)

        return mapping
    if isinstance(hint, type) and (typing.is_typeddict(hint) or dataclasses.is_dataclass(hint)):
        return _record(hint, partial=False)
    if hint is float:
        return _instance((int, float), "a number")
    if hint is int:
        return _instance((int,), "an integer")
    if hint is bool:
        return _instance((bool,), "a boolean")
    if hint is datetime:
        return _instance((datetime, int), "a datetime or Unix seconds")
    if hint is date:
        return _instance((date,), "a date")
    if isinstance(hint, type):
        return _instance((hint,), hint.__name__)
    return _compile(Any)


def _instance(kinds: tuple[type, ...], label: str) -> _Check:
    rejects_bool = bool not in kinds and any(k in (int, float) for k in kinds)

    def check(value: Any, path: str, problems: list[str]) -> None:
        if not isinstance(value, kinds) or (rejects_bool and isinstance(value, bool)):
            problems.append(f"{path} should be {label}, got {type(value).__name__}")

    return check


def _label(hint: Any) -> str:
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", repr(hint))
