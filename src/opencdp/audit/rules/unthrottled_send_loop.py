"""OCDP209: a loop that sends as fast as it can."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import ClassVar

from .. import sdk
from ..analysis import ModuleModel, Scope, dotted_name
from ..model import Severity
from ..rule import Hit, PythonRule

__all__ = ["UnthrottledSendLoop"]

_SMALL = 100
_THROTTLE_WORDS = ("sleep", "acquire", "throttl", "limit", "schedule", "semaphore")
_SEMAPHORES = frozenset(
    {"asyncio.Semaphore", "asyncio.BoundedSemaphore", "threading.Semaphore",
     "threading.BoundedSemaphore", "anyio.Semaphore", "anyio.CapacityLimiter"}
)


def _int(expr: ast.expr) -> int | None:
    if isinstance(expr, ast.Constant) and type(expr.value) is int:
        return expr.value
    return None


class UnthrottledSendLoop(PythonRule):
    """A loop over an unbounded collection that calls a client without a rate limit.

    The Track API allows about 100 requests per second per workspace; a loop over every user
    sends them in a burst, gets 429s and loses data unless each call is retried. Use
    ``opencdp.Client``, which batches (Track v2 ``/batch``) and rate-limits per destination,
    or throttle the loop (a limiter, a semaphore, ``sleep``). Loops over literals or small
    ``range()`` s, and clients that batch on their own (opencdp, Segment), are not reported.
    """

    code = "OCDP209"
    name = "unthrottled-send-loop"
    severity = Severity.WARNING
    message = "loop sends without a rate limit; use opencdp.Client or throttle the loop"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def backfill(users) -> None:
    for user in users:
        client.identify(str(user.id), {"email": user.email})
""",
        """\
import os
import time

from customerio import CustomerIO

cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])


def backfill(users) -> None:
    for user in users:
        cio.identify(id=str(user.id), email=user.email)
        time.sleep(0.01)
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
import os

from customerio import CustomerIO

cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])


def backfill(users) -> None:
    for user in users:
        cio.identify(id=str(user.id), email=user.email)  # OCDP209
""",
        """\
import asyncio
import os

from cdp_client import CDPClient, CDPConfig

cdp = CDPClient(CDPConfig(cdp_api_key=os.environ["CDP_API_KEY"]))


async def announce(user_ids) -> None:
    await asyncio.gather(*(cdp.track(u, "feature_announced") for u in user_ids))  # OCDP209
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        reported: set[int] = set()
        for call in model.sdk_calls():
            if call.op not in sdk.NETWORK_OPS or call.kind.rate_limited:
                continue
            loops = model.context(call.node).loops
            if not loops or any(self._throttled(model, loop) for loop in loops):
                continue
            unbounded = [loop for loop in loops if not self._bounded(model, loop)]
            if not unbounded or id(unbounded[-1]) in reported:
                continue
            reported.add(id(unbounded[-1]))
            yield self.hit(
                call.node,
                f"loop calls `{call.kind.label}.{call.method}()` with no rate limit (the Track "
                "API allows ~100 requests/s); use opencdp.Client (batched, rate-limited) or "
                "throttle the loop",
            )

    @staticmethod
    def _iterable(loop: ast.AST) -> ast.expr | None:
        if isinstance(loop, (ast.For, ast.AsyncFor)):
            return loop.iter
        if isinstance(loop, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return loop.generators[0].iter
        return None

    def _bounded(self, model: ModuleModel, loop: ast.AST) -> bool:
        iterable = self._iterable(loop)
        if iterable is None:
            return False
        return self._small(model, iterable, model.scope_of(loop))

    def _small(self, model: ModuleModel, expr: ast.expr, scope: Scope) -> bool:
        expr = model.value_of(expr, scope)
        if isinstance(expr, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            return True
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            if expr.func.id == "range" and expr.args and not model.lookup("range", scope):
                bounds = [_int(a) for a in expr.args[:2]]
                if None in bounds:
                    return False
                numbers = [b for b in bounds if b is not None]
                span = numbers[0] if len(numbers) == 1 else numbers[1] - numbers[0]
                return span <= _SMALL
            if expr.func.id in ("enumerate", "reversed", "sorted") and expr.args:
                return self._small(model, expr.args[0], scope)
        if isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Slice):
            upper = _int(expr.slice.upper) if expr.slice.upper is not None else None
            lower = _int(expr.slice.lower) if expr.slice.lower is not None else 0
            return upper is not None and lower is not None and upper - lower <= _SMALL
        return False

    @staticmethod
    def _throttled(model: ModuleModel, loop: ast.AST) -> bool:
        """A call or context manager in the loop whose name says it waits or limits."""
        if isinstance(loop, (ast.For, ast.AsyncFor, ast.While)):
            roots: list[ast.AST] = list(loop.body)
        elif isinstance(loop, ast.DictComp):
            roots = [loop.key, loop.value]
        elif isinstance(loop, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            roots = [loop.elt]
        else:
            return False
        stack = roots
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)):
                continue
            names: list[ast.expr] = []
            if isinstance(node, ast.Call):
                names.append(node.func)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                names.extend(item.context_expr for item in node.items)
            for expr in names:
                value = model.value_of(expr, model.scope_of(expr))
                if isinstance(value, ast.Call):
                    if model.qualify(value.func, model.scope_of(value)) in _SEMAPHORES:
                        return True
                    value = value.func
                name = (dotted_name(value) or "").lower()
                tokens = name.replace(".", "_").split("_")
                if any(w in name for w in _THROTTLE_WORDS) or "sem" in tokens:
                    return True
            stack.extend(ast.iter_child_nodes(node))
        return False
