"""Small helpers shared by several rules."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from ..analysis import ModuleModel, SdkCall

__all__ = [
    "SNAKE_CASE",
    "dict_items",
    "event_arguments",
    "is_test_module",
    "string_key",
    "terminal_name",
]

SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def event_arguments(model: ModuleModel) -> Iterator[tuple[SdkCall, ast.expr]]:
    """Each event-tracking call with the expression given as its event name."""
    for call in model.sdk_calls():
        if call.op in ("track", "track_anonymous"):
            event = call.args.get("event")
            if event is not None:
                yield call, event


def string_key(expr: ast.expr | None) -> str | None:
    """The text of a string literal (a dictionary key or subscript), else None."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    return None


def dict_items(node: ast.Dict) -> Iterator[tuple[str, ast.expr]]:
    """``(key, value)`` for each entry of a dict display whose key is a string literal."""
    for key, value in zip(node.keys, node.values, strict=True):
        text = string_key(key)
        if text is not None:
            yield text, value


def terminal_name(expr: ast.expr) -> str | None:
    """The name a value is known by: ``email`` for ``user.email``, ``email`` or
    ``data["email"]``, ``get_email()``."""
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Subscript):
        key = expr.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
    return None


def is_test_module(path: str) -> bool:
    """Test files and test helper modules by name (``test_*.py``, ``*_test.py``,
    ``conftest.py``, ``testing.py``): fake keys there are expected."""
    name = PurePosixPath(path).name
    return name.startswith("test_") or name.endswith("_test.py") or name in (
        "conftest.py", "testing.py"
    )
