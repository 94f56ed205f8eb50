"""Which functions run inside a web request, and which inside a background task.

Recognised by shape, the way the frameworks themselves register them: route decorators
(FastAPI, Flask, Starlette, Quart, Sanic), Django and DRF views (a first parameter named
``request`` in a module that imports Django, view decorators, class-based view methods), and
task decorators (Celery, Dramatiq, RQ, Huey).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Literal

__all__ = ["HandlerKind", "handler_kind"]

HandlerKind = Literal["web", "task"]

_ROUTE_METHODS = frozenset(
    {"route", "get", "post", "put", "patch", "delete", "head", "options", "trace", "api_route",
     "websocket", "websocket_route"}
)
_TASK_DECORATORS = frozenset({"task", "shared_task", "periodic_task", "actor", "job"})
_VIEW_DECORATORS = frozenset(
    {"api_view", "require_POST", "require_GET", "require_safe", "require_http_methods",
     "csrf_exempt", "login_required", "permission_required", "action"}
)
_VIEW_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "dispatch", "form_valid",
     "list", "create", "retrieve", "update", "partial_update", "destroy", "perform_create",
     "perform_update", "perform_destroy"}
)
_VIEW_BASE_SUFFIXES = ("View", "ViewSet", "APIView", "Endpoint", "HTTPEndpoint")
_WEB_FRAMEWORKS = frozenset(
    {"django", "rest_framework", "ninja", "starlette", "fastapi", "flask", "quart", "sanic",
     "aiohttp", "litestar"}
)


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _decorator_kind(decorator: ast.expr) -> HandlerKind | None:
    name = _last_name(decorator)
    if name is None:
        return None
    if (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and name in _ROUTE_METHODS
    ):
        return "web"
    if name in _TASK_DECORATORS:
        return "task"
    if name in _VIEW_DECORATORS:
        return "web"
    return None


def _first_param(fn: ast.FunctionDef | ast.AsyncFunctionDef, *, method: bool) -> str | None:
    params = [*fn.args.posonlyargs, *fn.args.args]
    if method:
        params = params[1:]
    return params[0].arg if params else None


def handler_kind(
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    enclosing_class: ast.ClassDef | None,
    imported_roots: Iterable[str],
) -> HandlerKind | None:
    """``"web"`` for a request handler, ``"task"`` for a background task, else None."""
    for decorator in fn.decorator_list:
        kind = _decorator_kind(decorator)
        if kind is not None:
            return kind
    web_module = bool(_WEB_FRAMEWORKS.intersection(imported_roots))
    if not web_module:
        return None
    if enclosing_class is not None:
        bases = [_last_name(b) or "" for b in enclosing_class.bases]
        if fn.name in _VIEW_METHODS and any(b.endswith(_VIEW_BASE_SUFFIXES) for b in bases):
            return "web"
        return None
    if _first_param(fn, method=False) == "request":
        return "web"
    return None
