"""OCDP202: millisecond (or microsecond) timestamps where Unix seconds are expected."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import ClassVar

from ..analysis import ModuleModel, Scope
from ..model import Severity
from ..rule import Hit, PythonRule
from ._common import dict_items, string_key

__all__ = ["MillisecondTimestamp", "timestamp_like"]

_SECONDS_NOW = frozenset({"time.time", "time.mktime", "calendar.timegm"})
_NANOS_NOW = frozenset({"time.time_ns"})
_FACTORS = frozenset({1000, 1_000_000})
_WRAPPERS = frozenset({"int", "round", "float"})
_MATH_WRAPPERS = frozenset({"math.floor", "math.ceil", "math.trunc"})
_MAX_DEPTH = 8


def timestamp_like(name: str) -> bool:
    """Attribute and argument names that Customer.io reads as Unix timestamps."""
    name = name.lower()
    return name in {"timestamp", "created", "updated", "ts"} or name.endswith(
        ("_at", "_time", "_timestamp", "_ts")
    )


def _is_factor(expr: ast.expr) -> bool:
    return (
        isinstance(expr, ast.Constant)
        and isinstance(expr.value, (int, float))
        and not isinstance(expr.value, bool)
        and expr.value in _FACTORS
    )


class _Scale:
    """Decides whether an expression is a sub-second-resolution Unix timestamp."""

    def __init__(self, model: ModuleModel) -> None:
        self.model = model

    def _called(self, expr: ast.expr, scope: Scope, names: frozenset[str]) -> bool:
        if not isinstance(expr, ast.Call):
            return False
        if self.model.qualify(expr.func, scope) in names:
            return True
        return (
            names is _SECONDS_NOW
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "timestamp"
            and not expr.args
        )

    def fine(self, expr: ast.expr, scope: Scope, depth: int = 0) -> bool:
        if depth > _MAX_DEPTH:
            return False
        model = self.model
        if isinstance(expr, ast.Call) and len(expr.args) >= 1:
            func = expr.func
            builtin = isinstance(func, ast.Name) and func.id in _WRAPPERS and not model.lookup(
                func.id, scope
            )
            if builtin or model.qualify(func, scope) in _MATH_WRAPPERS:
                return self.fine(expr.args[0], scope, depth + 1)
        if self._called(expr, scope, _NANOS_NOW):
            return True
        if isinstance(expr, ast.BinOp):
            left, right = expr.left, expr.right
            if isinstance(expr.op, ast.Mult):
                return (self._called(left, scope, _SECONDS_NOW) and _is_factor(right)) or (
                    self._called(right, scope, _SECONDS_NOW) and _is_factor(left)
                )
            if isinstance(expr.op, (ast.Div, ast.FloorDiv)):
                return self._called(left, scope, _NANOS_NOW) and _is_factor(right)
        if isinstance(expr, ast.Name):
            return any(
                binding.how == "value"
                and binding.expr is not None
                and self.fine(binding.expr, binding.scope, depth + 1)
                for binding in model.lookup(expr.id, scope)
            )
        return False


class MillisecondTimestamp(PythonRule):
    """A millisecond or microsecond timestamp sent where Unix seconds are expected.

    Customer.io and the OpenCDP gateway read ``timestamp`` and attributes named ``*_at``,
    ``*_time`` or ``created`` as Unix **seconds**; ``time.time() * 1000`` is read as a date
    thousands of years ahead, or refused. The rule follows ``time.time() * 1000``,
    ``int(time.time() * 1e3)``, ``dt.timestamp() * 1000`` and ``time.time_ns()`` (through
    local variables) into a ``timestamp`` argument, a timestamp-named keyword, dictionary key
    or subscript, in modules that use a client library.
    """

    code = "OCDP202"
    name = "millisecond-timestamp"
    severity = Severity.ERROR
    message = "timestamp in milliseconds where Unix seconds are expected; use int(time.time())"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
import os
import time

from customerio import CustomerIO

cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])


def sign_up(user_id: str, email: str) -> None:
    cio.identify(id=user_id, email=email, created_at=int(time.time()))
""",
        """\
import time

from opencdp import Client

client = Client.from_env()


def checkout(user_id: str, started: float) -> None:
    elapsed_ms = (time.time() - started) * 1000
    client.track(user_id, "checkout_completed", {"duration_ms": elapsed_ms})
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
import os
import time

from customerio import CustomerIO

cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])


def sign_up(user_id: str, email: str) -> None:
    cio.identify(id=user_id, email=email, created_at=int(time.time() * 1000))  # OCDP202
""",
        """\
from datetime import datetime, timezone

from opencdp import Client

client = Client.from_env()


def upgrade(user_id: str) -> None:
    now_ms = datetime.now(timezone.utc).timestamp() * 1000
    client.identify(user_id, {"upgraded_at": now_ms})  # OCDP202
    client.track(user_id, "plan_upgraded", timestamp=now_ms)  # OCDP202
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        if not model.uses_sdk():
            return
        scale = _Scale(model)
        seen: set[int] = set()
        for value, name in self._sinks(model):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if scale.fine(value, model.scope_of(value)):
                yield self.hit(
                    value,
                    f"`{name}` gets a timestamp in milliseconds; Customer.io expects Unix "
                    "seconds: use int(time.time()) or datetime.timestamp() without * 1000",
                )

    @staticmethod
    def _sinks(model: ModuleModel) -> Iterator[tuple[ast.expr, str]]:
        for call in model.sdk_calls():
            timestamp = call.args.get("timestamp")
            if timestamp is not None:
                yield timestamp, "timestamp"
        for node in model.nodes:
            if isinstance(node, ast.keyword) and node.arg and timestamp_like(node.arg):
                yield node.value, node.arg
            elif isinstance(node, ast.Dict):
                for key, value in dict_items(node):
                    if timestamp_like(key):
                        yield value, key
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    name = string_key(target.slice) if isinstance(target, ast.Subscript) else None
                    if name is not None and timestamp_like(name):
                        yield node.value, name
