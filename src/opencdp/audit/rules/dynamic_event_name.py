"""OCDP204: event names built at run time."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import ClassVar

from ..analysis import ModuleModel
from ..model import Severity
from ..rule import Hit, PythonRule
from ._common import event_arguments

__all__ = ["DynamicEventName", "interpolated_values"]


def _is_text(expr: ast.expr) -> bool:
    return isinstance(expr, ast.JoinedStr) or (
        isinstance(expr, ast.Constant) and isinstance(expr.value, str)
    )


def _operands(expr: ast.expr) -> list[ast.expr]:
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return [*_operands(expr.left), *_operands(expr.right)]
    return [expr]


def interpolated_values(expr: ast.expr) -> list[ast.expr] | None:
    """The run-time values a string expression is built from, or None when it is not built
    from a template (f-string, ``+`` with a literal, ``%`` or ``.format()``/``.join()`` on a
    literal)."""
    if isinstance(expr, ast.JoinedStr):
        values = [v.value for v in expr.values if isinstance(v, ast.FormattedValue)]
        return values or None
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        operands = _operands(expr)
        if any(_is_text(o) for o in operands):
            values = []
            for operand in operands:
                if isinstance(operand, ast.JoinedStr):
                    values.extend(interpolated_values(operand) or [])
                elif not isinstance(operand, ast.Constant):
                    values.append(operand)
            return values or None
        return None
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod) and _is_text(expr.left):
        right = expr.right
        return list(right.elts) if isinstance(right, ast.Tuple) else [right]
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr in ("format", "join")
        and _is_text(expr.func.value)
    ):
        values = [*expr.args, *(k.value for k in expr.keywords)]
        if expr.func.attr == "join" and len(expr.args) == 1:
            arg = expr.args[0]
            if isinstance(arg, (ast.List, ast.Tuple)):
                values = [e for e in arg.elts if not isinstance(e, ast.Constant)]
        return values or None
    return None


class DynamicEventName(PythonRule):
    """An event name built at run time (f-string, concatenation, ``%`` or ``.format()``).

    Every distinct name becomes a separate event in Customer.io's UI, segment builder and
    trigger list; ``f"viewed_product_{product_id}"`` creates thousands. Use one fixed name
    and put the variable part in the event's properties.
    """

    code = "OCDP204"
    name = "dynamic-event-name"
    severity = Severity.WARNING
    message = "event name built at run time; use a fixed name, variable parts in properties"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def view_product(user_id: str, product_id: int) -> None:
    client.track(user_id, "product_viewed", {"product_id": product_id})
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def view_product(user_id: str, product_id: int) -> None:
    client.track(user_id, f"viewed_product_{product_id}")  # OCDP204
""",
        """\
import segment.analytics as analytics


def change_plan(user_id: str, plan: str) -> None:
    event = "plan_changed_to_" + plan
    analytics.track(user_id, event)  # OCDP204
    analytics.track(user_id, "plan_{}_selected".format(plan))  # OCDP204
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        for call, event in event_arguments(model):
            value = model.value_of(event, call.scope)
            values = interpolated_values(value)
            if values is None:
                continue
            parts = ", ".join(f"`{ast.unparse(v)}`" for v in values[:3])
            yield self.hit(
                event,
                f"event name built at run time from {parts}; use a fixed name and put the "
                "variable part in properties",
            )
