"""Which functions run inside a web request, and which inside a background task.

Recognised by shape, the way the frameworks themselves register them: route decorators
(FastAPI, Flask, Starlette, Quart, Sanic), Django and DRF views (view decorators,
class-based view methods, and functions whose first parameter is ``request``), and task
decorators (Celery, Dramatiq, RQ, Huey).

A first parameter named ``request`` is common outside views too (``def send(request)`` for
an API request object), so it makes a view only with more evidence: the module imports a
web framework or one of opencdp's web integrations, the module is a views module
(``views.py``, ``handlers.py``, a ``views`` package), or the function is named like a
handler (``handler``, ``*_handler``, ``*_view``), as a plain ``def handler(request)`` for a
serverless platform is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Literal

__all__ = ["HandlerKind", "handler_kind", "is_web_module"]

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
_WEB_INTEGRATIONS = frozenset(
    {"opencdp.integrations.django", "opencdp.integrations.flask", "opencdp.integrations.fastapi"}
)
_VIEW_MODULES = frozenset({"views", "handlers"})


def is_web_module(imported_modules: Iterable[str], module: str) -> bool:
    """A module whose ``request``-first functions are views: it imports a web framework or
    an opencdp web integration, or it is named as views are."""
    imported = set(imported_modules)
    roots = {name.split(".")[0] for name in imported}
    if _WEB_FRAMEWORKS & roots or _WEB_INTEGRATIONS & imported:
        return True
    return bool(_VIEW_MODULES.intersection(module.split(".")))


def _handler_name(name: str) -> bool:
    return name == "handler" or name.endswith(("_handler", "_view"))


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
    web_module: bool,
) -> HandlerKind | None:
    """``"web"`` for a request handler, ``"task"`` for a background task, else None;
    ``web_module`` as ``is_web_module`` says of the function's module."""
    for decorator in fn.decorator_list:
        kind = _decorator_kind(decorator)
        if kind is not None:
            return kind
    if enclosing_class is not None:
        if not web_module:
            return None
        bases = [_last_name(b) or "" for b in enclosing_class.bases]
        if fn.name in _VIEW_METHODS and any(b.endswith(_VIEW_BASE_SUFFIXES) for b in bases):
            return "web"
        return None
    if _first_param(fn, method=False) == "request" and (web_module or _handler_name(fn.name)):
        return "web"
    return None
