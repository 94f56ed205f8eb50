"""The semantic model of a Python module that rules query.

Rules should not each re-discover that ``cio`` in ``cio.track(...)`` is a Customer.io client
built in another module, or that a call runs inside a Flask route within a loop. This module
does that once per file, on the scopes and bindings ``scopes.py`` builds (imports resolved
to qualified names): client objects followed through assignments, ``self`` attributes,
factory functions, imports between the audited modules and opencdp's integrations (``get_client()``,
``cdp.client``, ``Depends(get_client)``), and every call into a known client with its
arguments bound to roles. It is a deliberately small, flow-insensitive analysis: a name
bound to a client anywhere in a scope is that client everywhere in the scope. A parameter
without an annotation that is only named like a client (``client``, ``cio``...) is a guess,
taken when nothing better is known (see ``sdk.UNTYPED``).
"""


from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from . import sdk
from .frameworks import HandlerKind, handler_kind, is_web_module
from .scopes import (
    COMPREHENSIONS,
    MAX_DEPTH,
    Binding,
    FunctionNode,
    ModuleScopes,
    Scope,
    dotted_name,
    module_name_for,
    own_nodes,
)
from .sdk import ClientKind, Holder, Role, Signature

__all__ = [
    "Binding",
    "Context",
    "ModuleModel",
    "ProjectIndex",
    "Scope",
    "SdkCall",
    "dotted_name",
    "module_name_for",
    "own_nodes",
]

_THREAD_OFFLOADS = frozenset(
    {
        "asyncio.to_thread",
        "starlette.concurrency.run_in_threadpool",
        "fastapi.concurrency.run_in_threadpool",
        "anyio.to_thread.run_sync",
    }
)
_AWAIT_COMBINATORS = frozenset({"asyncio.gather", "asyncio.wait", "asyncio.wait_for",
                                "asyncio.shield"})
_DEPENDENCIES = frozenset({"fastapi.Depends", "fastapi.Security", "fastapi.params.Depends"})


Known: TypeAlias = ClientKind | Holder
"""What the analysis can tell an expression is: a client, or an integration object that
holds one."""


@dataclass(frozen=True, slots=True)
class Context:
    """Where a node runs: its function, the kind of handler that function is, the loops
    around the node inside that function (innermost last), and whether it is awaited."""

    function: FunctionNode | None
    handler: HandlerKind | None
    loops: tuple[ast.AST, ...]
    awaited: bool


@dataclass(frozen=True, slots=True, eq=False)
class SdkCall:
    """A call into a known client, with its arguments bound to roles.

    ``node`` is the expression the code evaluates: the method call itself, or the
    ``asyncio.to_thread(...)``-style call that runs it.
    """

    node: ast.Call
    kind: ClientKind
    method: str
    signature: Signature
    args: Mapping[Role, ast.expr]
    extra: tuple[ast.keyword, ...]
    scope: Scope
    offloaded: bool = False

    @property
    def op(self) -> sdk.Op:
        return self.signature.op


class ProjectIndex(Protocol):
    """Cross-module lookups: the module model that defines a qualified name."""

    def find(self, qualified: str) -> tuple[ModuleModel, str] | None: ...

    def has_module(self, module: str) -> bool: ...


class _NoProject:
    def find(self, qualified: str) -> tuple[ModuleModel, str] | None:
        return None

    def has_module(self, module: str) -> bool:
        return False


class ModuleModel(ModuleScopes):
    """Facts about one module; built once, then queried by every rule. The scopes come
    from ``ModuleScopes``; this class follows clients through them."""

    def __init__(
        self,
        tree: ast.Module,
        *,
        path: str,
        module: str = "",
        is_package: bool = False,
        project: ProjectIndex | None = None,
    ) -> None:
        self.project: ProjectIndex = project if project is not None else _NoProject()
        super().__init__(tree, path=path, module=module, is_package=is_package)
        self._resolving: set[int] = set()
        self.imported_roots = frozenset(m.split(".")[0] for m in self.imported_modules if m)
        self.web_module = is_web_module(self.imported_modules, self.module)
        self._sdk_calls: list[SdkCall] | None = None
        self._qualified_calls: list[tuple[ast.Call, str, Scope]] | None = None

    # -- names across modules --------------------------------------------------------------

    def value_of(self, expr: ast.expr, scope: Scope, depth: int = 0) -> ast.expr:
        """Follow a name bound exactly once (here, or in an audited module it is imported
        from) to the expression it was bound to; anything else is returned as is."""
        if depth > MAX_DEPTH or not isinstance(expr, ast.Name):
            return expr
        bindings = self.lookup(expr.id, scope)
        if len(bindings) != 1:
            return expr
        binding = bindings[0]
        if binding.how == "value" and binding.expr is not None:
            return self.value_of(binding.expr, binding.scope, depth + 1)
        if binding.how == "import" and binding.qualified is not None:
            found = self.project.find(binding.qualified)
            if found is not None:
                model, name = found
                module_scope = model.scopes[model.tree]
                return model.value_of(ast.Name(id=name, ctx=ast.Load()), module_scope, depth + 1)
        return expr

    def string_value(self, expr: ast.expr, scope: Scope) -> str | None:
        """The string an expression certainly is (a literal, or a name bound once to one)."""
        value = self.value_of(expr, scope)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
        return None

    def uses_sdk(self) -> bool:
        """True when the module imports a client library or calls a known client."""
        roots = {"opencdp", "customerio", "cdp_client", "segment", "analytics"}
        return bool(roots & self.imported_roots) or bool(self.sdk_calls())

    # -- clients ---------------------------------------------------------------------------

    def client_kind(self, expr: ast.expr, scope: Scope, depth: int = 0) -> ClientKind | None:
        """The kind of client an expression evaluates to, when it is one we know."""
        known = self._known(expr, scope, depth)
        return known if isinstance(known, ClientKind) else None

    def _known(self, expr: ast.expr, scope: Scope, depth: int) -> Known | None:
        if depth > MAX_DEPTH or id(expr) in self._resolving:
            return None
        self._resolving.add(id(expr))
        try:
            return self._resolve(expr, scope, depth)
        finally:
            self._resolving.discard(id(expr))

    def _resolve(self, expr: ast.expr, scope: Scope, depth: int) -> Known | None:
        if isinstance(expr, ast.Call):
            return self._returned(expr.func, expr, scope, depth)
        if isinstance(expr, ast.Await):
            return self._known(expr.value, scope, depth + 1)
        if isinstance(expr, ast.IfExp):
            return self._known(expr.body, scope, depth + 1) or self._known(
                expr.orelse, scope, depth + 1
            )
        if isinstance(expr, ast.BoolOp):
            for value in expr.values:
                kind = self._known(value, scope, depth + 1)
                if kind is not None:
                    return kind
            return None
        if isinstance(expr, ast.Name):
            return self._bindings_kind(self.lookup(expr.id, scope), depth)
        if isinstance(expr, ast.Attribute):
            kind = self._self_attribute_kind(expr, scope, depth)
            if kind is not None:
                return kind
            owner = self._known(expr.value, scope, depth + 1)
            if isinstance(owner, Holder):
                return owner.properties.get(expr.attr)
            if isinstance(expr.value, ast.Attribute) and expr.value.attr == "state" and (
                expr.attr in sdk.STATE_CLIENTS
            ):
                return sdk.STATE_CLIENTS[expr.attr]
            qualified = self.qualify(expr, scope)
            if qualified is not None:
                return self._qualified_kind(qualified, depth)
        return None

    def _bindings_kind(self, bindings: list[Binding], depth: int) -> Known | None:
        """The first binding that is a known object; a guess from a parameter's name only
        when no binding says more."""
        if depth > MAX_DEPTH:
            return None
        guess: Known | None = None
        for binding in bindings:
            kind = self._binding_kind(binding, depth)
            if kind is sdk.UNTYPED:
                guess = kind
            elif kind is not None:
                return kind
        return guess

    def _binding_kind(self, binding: Binding, depth: int) -> Known | None:
        if binding.how in ("value", "parameter") and binding.expr is not None:
            kind = self._known(binding.expr, binding.scope, depth + 1)
            if kind is not None:
                return kind
        if binding.how == "parameter" and binding.name in sdk.CLIENT_NAMES:
            return sdk.UNTYPED
        if binding.how == "annotation" and binding.expr is not None:
            return self._annotation_kind(binding.expr, binding.scope, depth)
        if binding.how == "import" and binding.qualified is not None:
            return self._qualified_kind(binding.qualified, depth)
        return None

    def _annotation_kind(self, annotation: ast.expr, scope: Scope, depth: int) -> Known | None:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        candidates: list[ast.expr] = [annotation]
        if isinstance(annotation, ast.BinOp):
            candidates = [annotation.left, annotation.right]
        elif isinstance(annotation, ast.Subscript):
            inner = annotation.slice
            candidates = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
        for candidate in candidates:
            if isinstance(candidate, ast.Call):
                kind = self._known(candidate, scope, depth + 1)
                if kind is not None:
                    return kind
                continue
            qualified = self.qualify(candidate, scope)
            if qualified is not None:
                kind = sdk.CLIENT_CLASSES.get(qualified) or sdk.HOLDER_CLASSES.get(qualified)
                if kind is not None:
                    return kind
        return None

    def _self_attribute_kind(self, expr: ast.Attribute, scope: Scope, depth: int) -> Known | None:
        if not isinstance(expr.value, ast.Name):
            return None
        function = scope
        while isinstance(function.node, (ast.Lambda, *COMPREHENSIONS)) and function.parent:
            function = function.parent
        owner = function.parent
        if owner is None or not isinstance(owner.node, ast.ClassDef):
            return None
        if not isinstance(function.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        params = [*function.node.args.posonlyargs, *function.node.args.args]
        if not params or params[0].arg != expr.value.id:
            return None
        attrs = self.class_attributes.get(owner.node, {})
        kind = self._bindings_kind(attrs.get(expr.attr, []), depth)
        if kind is None:
            kind = self._bindings_kind(owner.bindings.get(expr.attr, []), depth)
        return kind

    def _qualified_kind(self, qualified: str, depth: int) -> Known | None:
        if qualified in sdk.MODULE_CLIENTS and not self.project.has_module(qualified):
            return sdk.MODULE_CLIENTS[qualified]
        found = self.project.find(qualified)
        if found is None:
            return None
        model, name = found
        return model._bindings_kind(model.scopes[model.tree].bindings.get(name, []), depth + 1)

    def constructed_kind(self, call: ast.Call, scope: Scope, depth: int = 0) -> ClientKind | None:
        """The client a call returns: a client class, ``Client.from_env()``, an integration's
        accessor (``get_client()``, ``cdp.client_for(app)``), FastAPI's ``Depends(...)`` on
        one, or a factory function (in this module or an audited one) that returns a client."""
        known = self._returned(call.func, call, scope, depth)
        return known if isinstance(known, ClientKind) else None

    def _returned(
        self, func: ast.expr, call: ast.Call | None, scope: Scope, depth: int
    ) -> Known | None:
        """What calling ``func`` returns (``call`` is the call, when there is one)."""
        if depth > MAX_DEPTH:
            return None
        qualified = self.qualify(func, scope)
        if qualified is not None:
            kind = self.client_class_kind(qualified, call)
            if kind is not None:
                return kind
            owner, _, method = qualified.rpartition(".")
            if method in sdk.FACTORY_METHODS and owner in sdk.CLIENT_CLASSES:
                return sdk.CLIENT_CLASSES[owner]
            known = sdk.CLIENT_FUNCTIONS.get(qualified) or sdk.HOLDER_CLASSES.get(qualified)
            if known is not None:
                return known
            if qualified in _DEPENDENCIES:
                return self._dependency_kind(call, scope, depth)
            found = self.project.find(qualified)
            if found is not None:
                model, name = found
                return model._factory_kind(
                    model.scopes[model.tree].bindings.get(name, []), depth + 1
                )
        if isinstance(func, ast.Attribute):
            owner_kind = self._known(func.value, scope, depth + 1)
            if isinstance(owner_kind, Holder):
                return owner_kind.methods.get(func.attr)
        if isinstance(func, ast.Name):
            return self._factory_kind(self.lookup(func.id, scope), depth + 1)
        return None

    def _dependency_kind(self, call: ast.Call | None, scope: Scope, depth: int) -> Known | None:
        """``Depends(get_client)`` gives the parameter what ``get_client`` returns."""
        if call is None:
            return None
        dependency = call.args[0] if call.args else next(
            (kw.value for kw in call.keywords if kw.arg == "dependency"), None
        )
        if dependency is None:
            return None
        return self._returned(dependency, None, scope, depth + 1)

    def _factory_kind(self, bindings: list[Binding], depth: int) -> Known | None:
        if depth > MAX_DEPTH:
            return None
        for binding in bindings:
            if binding.how == "function" and binding.function is not None:
                fn_scope = self.scopes[binding.function]
                for node in own_nodes(binding.function):
                    if isinstance(node, ast.Return) and node.value is not None:
                        kind = self._known(node.value, fn_scope, depth + 1)
                        if kind is not None:
                            return kind
            elif binding.how == "import" and binding.qualified is not None:
                found = self.project.find(binding.qualified)
                if found is not None:
                    model, name = found
                    return model._factory_kind(
                        model.scopes[model.tree].bindings.get(name, []), depth + 1
                    )
        return None

    @staticmethod
    def client_class_kind(qualified: str, call: ast.Call | None) -> ClientKind | None:
        """The kind a client class constructor call builds, honouring keywords that make a
        background client blocking (``delivery="blocking"``, ``sync_mode=True``)."""
        kind = sdk.CLIENT_CLASSES.get(qualified)
        if kind is None or call is None:
            return kind
        variant = sdk.BLOCKING_VARIANTS.get(kind)
        if variant is not None:
            keyword, value, blocking = variant
            for kw in call.keywords:
                constant = kw.value if isinstance(kw.value, ast.Constant) else None
                if kw.arg == keyword and constant is not None and constant.value == value:
                    return blocking
        return kind

    # -- calls -----------------------------------------------------------------------------

    def sdk_calls(self) -> list[SdkCall]:
        """Every call into a known client, in source order."""
        if self._sdk_calls is None:
            calls: list[SdkCall] = []
            for node in self.nodes:
                if isinstance(node, ast.Call):
                    call = self._sdk_call(node)
                    if call is not None:
                        calls.append(call)
            calls.sort(key=lambda c: (c.node.lineno, c.node.col_offset))
            self._sdk_calls = calls
        return self._sdk_calls

    def _sdk_call(self, call: ast.Call) -> SdkCall | None:
        scope = self.scope_of(call)
        target: ast.expr = call.func
        args: list[ast.expr] = list(call.args)
        offloaded = False
        qualified = self.qualify(call.func, scope)
        if qualified in _THREAD_OFFLOADS and call.args:
            target, args, offloaded = call.args[0], list(call.args[1:]), True
        elif isinstance(call.func, ast.Attribute) and call.func.attr == "run_in_executor":
            if len(call.args) < 2:
                return None
            target, args, offloaded = call.args[1], list(call.args[2:]), True
        if not isinstance(target, ast.Attribute):
            return None
        kind = self.client_kind(target.value, scope)
        if kind is None:
            return None
        signature = sdk.signature_for(kind, target.attr)
        if signature is None:
            return None
        bound: dict[Role, ast.expr] = {}
        for role, arg in zip(signature.params, args, strict=False):
            if isinstance(arg, ast.Starred):
                break
            bound.setdefault(role, arg)
        extra: list[ast.keyword] = []
        for kw in call.keywords:
            if kw.arg is None:
                continue
            keyword_role = signature.keywords.get(kw.arg)
            if keyword_role is not None:
                bound.setdefault(keyword_role, kw.value)
            elif signature.rest is not None:
                extra.append(kw)
        return SdkCall(
            call, kind, target.attr, signature, bound, tuple(extra), scope, offloaded
        )

    def constructor_calls(self) -> list[tuple[ast.Call, str, Scope]]:
        """Calls whose callee resolves to a qualified name, with that name."""
        if self._qualified_calls is None:
            found = []
            for node in self.nodes:
                if isinstance(node, ast.Call):
                    scope = self.scope_of(node)
                    qualified = self.qualify(node.func, scope)
                    if qualified is not None:
                        found.append((node, qualified, scope))
            self._qualified_calls = found
        return self._qualified_calls

    # -- context ---------------------------------------------------------------------------

    def enclosing_function(self, node: ast.AST) -> FunctionNode | None:
        current = self.parents.get(node)
        while current is not None:
            if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return current
            current = self.parents.get(current)
        return None

    def handler_of(self, fn: FunctionNode) -> HandlerKind | None:
        parent = self.parents.get(fn)
        owner = parent if isinstance(parent, ast.ClassDef) else None
        return handler_kind(fn, owner, self.web_module)

    def context(self, node: ast.AST) -> Context:
        """Where ``node`` runs. Loops count only inside the node's own function (a nested
        function defined in a loop does not run per iteration), and a loop's first iterable
        is evaluated once, so it is not "in" the loop."""
        loops: list[ast.AST] = []
        function: FunctionNode | None = None
        child: ast.AST = node
        current = self.parents.get(node)
        skip_comprehension: ast.AST | None = None
        while current is not None:
            if isinstance(current, ast.Lambda):
                break
            if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                child in current.body
            ):
                function = current
                break
            if isinstance(current, ast.comprehension):
                parent = self.parents.get(current)
                if (isinstance(parent, COMPREHENSIONS) and child is current.iter
                        and current is parent.generators[0]):
                    skip_comprehension = parent
            elif isinstance(current, COMPREHENSIONS):
                if current is not skip_comprehension:
                    loops.append(current)
            elif isinstance(current, (ast.For, ast.AsyncFor)):
                if child in current.body:
                    loops.append(current)
            elif isinstance(current, ast.While) and (child in current.body or
                                                     child is current.test):
                loops.append(current)
            child = current
            current = self.parents.get(current)
        handler = self.handler_of(function) if function is not None else None
        return Context(function, handler, tuple(reversed(loops)), self._awaited(node))

    def _awaited(self, node: ast.AST) -> bool:
        current = self.parents.get(node)
        while current is not None:
            if isinstance(current, ast.Await):
                return True
            if isinstance(current, (ast.Starred, ast.List, ast.Tuple, ast.comprehension,
                                    *COMPREHENSIONS)):
                current = self.parents.get(current)
                continue
            if isinstance(current, ast.Call):
                qualified = self.qualify(current.func, self.scope_of(current))
                if qualified in _AWAIT_COMBINATORS:
                    current = self.parents.get(current)
                    continue
            return False
        return False
