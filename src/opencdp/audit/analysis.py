"""The semantic model of a Python module that rules query.

Rules should not each re-discover that ``cio`` in ``cio.track(...)`` is a Customer.io client
built in another module, or that a call runs inside a Flask route within a loop. This module
does that once per file: scopes and bindings (with imports resolved to qualified names),
client objects followed through assignments, ``self`` attributes, factory functions,
imports between the audited modules and opencdp's integrations (``get_client()``,
``cdp.client``, ``Depends(get_client)``), and every call into a known client with its
arguments bound to roles. It is a deliberately small, flow-insensitive analysis: a name
bound to a client anywhere in a scope is that client everywhere in the scope. A parameter
without an annotation that is only named like a client (``client``, ``cio``...) is a guess,
taken when nothing better is known (see ``sdk.UNTYPED``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias

from . import sdk
from .frameworks import HandlerKind, handler_kind, is_web_module
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

FunctionNode: TypeAlias = ast.FunctionDef | ast.AsyncFunctionDef
ScopeNode: TypeAlias = (
    ast.Module
    | ast.FunctionDef
    | ast.AsyncFunctionDef
    | ast.Lambda
    | ast.ClassDef
    | ast.ListComp
    | ast.SetComp
    | ast.DictComp
    | ast.GeneratorExp
)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
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
_MAX_DEPTH = 12


BindingHow: TypeAlias = Literal[
    "value", "import", "annotation", "parameter", "function", "opaque"
]
Known: TypeAlias = ClientKind | Holder
"""What the analysis can tell an expression is: a client, or an integration object that
holds one."""


@dataclass(frozen=True, slots=True, eq=False)
class Binding:
    """What a name was bound to: a value (with the expression), an import (with the
    qualified name), an annotation, a function's parameter (with its default, and its name
    when it has no annotation), a function definition, or something opaque (loop targets,
    unpacking, lambda parameters, classes)."""

    how: BindingHow
    scope: Scope
    expr: ast.expr | None = None
    qualified: str | None = None
    function: FunctionNode | None = None
    name: str | None = None


@dataclass(eq=False)
class Scope:
    node: ScopeNode
    parent: Scope | None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)

    @property
    def is_class(self) -> bool:
        return isinstance(self.node, ast.ClassDef)

    def module(self) -> Scope:
        scope = self
        while scope.parent is not None:
            scope = scope.parent
        return scope

    def bind(self, name: str, binding: Binding) -> None:
        target = self.module() if name in self.global_names else self
        target.bindings.setdefault(name, []).append(binding)


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


def dotted_name(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def module_name_for(parts: tuple[str, ...]) -> str:
    """The dotted module name of a file given its package path parts (``pkg``, ``mod.py``)."""
    names = list(parts)
    last = names[-1]
    for suffix in (".pyi", ".py"):
        if last.endswith(suffix):
            last = last[: -len(suffix)]
            break
    names[-1] = last
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


class _ScopeBuilder(ast.NodeVisitor):
    """Builds scopes and bindings, and records each node's parent.

    Nodes without a ``visit_*`` method are walked with an explicit stack, so recursion depth
    follows the nesting of functions, classes and assignments, not of expressions (a
    thousand-term string concatenation is one level deep here, and a thousand levels deep
    for a recursive visitor).
    """

    def __init__(self, model: ModuleModel) -> None:
        self.model = model
        self.scope = Scope(model.tree, None)
        model.scopes[model.tree] = self.scope

    def visit(self, node: ast.AST) -> None:
        stack = [node]
        while stack:
            current = stack.pop()
            self.model.nodes.append(current)
            special = getattr(self, "visit_" + type(current).__name__, None)
            if special is not None:
                special(current)
                continue
            children = list(ast.iter_child_nodes(current))
            for child in children:
                self.model.parents[child] = current
            stack.extend(reversed(children))

    def generic_visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.model.parents[child] = node
            self.visit(child)

    def _child(self, parent: ast.AST, child: ast.AST) -> None:
        self.model.parents[child] = parent
        self.visit(child)

    def _enter(self, node: ScopeNode) -> Scope:
        scope = Scope(node, self.scope)
        self.model.scopes[node] = scope
        return scope

    def _function(self, node: FunctionNode) -> None:
        for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self._child(node, expr)
        if node.returns is not None:
            self._child(node, node.returns)
        self.scope.bind(node.name, Binding("function", self.scope, function=node))
        outer = self.scope
        self.scope = self._enter(node)
        args = node.args
        defaults = _defaults(args)
        for param in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            self.model.parents[param] = node
            default = defaults.get(param.arg)
            if param.annotation is not None:
                self._child(param, param.annotation)
                self.scope.bind(param.arg, Binding("annotation", outer, expr=param.annotation))
                if default is not None:
                    self.scope.bind(param.arg, Binding("parameter", outer, expr=default))
            else:
                self.scope.bind(
                    param.arg, Binding("parameter", outer, expr=default, name=param.arg)
                )
        for rest in (args.vararg, args.kwarg):
            if rest is None:
                continue
            self.model.parents[rest] = node
            if rest.annotation is not None:
                self._child(rest, rest.annotation)
                self.scope.bind(rest.arg, Binding("annotation", outer, expr=rest.annotation))
            else:
                self.scope.bind(rest.arg, Binding("opaque", self.scope))
        for stmt in node.body:
            self._child(node, stmt)
        self.scope = outer

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in [*node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self._child(node, expr)
        outer = self.scope
        self.scope = self._enter(node)
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            self.scope.bind(arg.arg, Binding("opaque", self.scope))
        self._child(node, node.body)
        self.scope = outer

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self._child(node, expr)
        self.scope.bind(node.name, Binding("opaque", self.scope))
        outer = self.scope
        self.scope = self._enter(node)
        for stmt in node.body:
            self._child(node, stmt)
        self.scope = outer

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
    ) -> None:
        first, *rest = node.generators
        self.model.parents[first] = node
        self._child(first, first.iter)
        outer = self.scope
        self.scope = self._enter(node)
        self._bind_target(first.target, None)
        self.model.parents[first.target] = first
        for cond in first.ifs:
            self._child(first, cond)
        for gen in rest:
            self.model.parents[gen] = node
            self._child(gen, gen.iter)
            self._bind_target(gen.target, None)
            self.model.parents[gen.target] = gen
            for cond in gen.ifs:
                self._child(gen, cond)
        if isinstance(node, ast.DictComp):
            self._child(node, node.key)
            self._child(node, node.value)
        else:
            self._child(node, node.elt)
        self.scope = outer

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension

    def _bind_target(self, target: ast.expr, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            how: BindingHow = "opaque" if value is None else "value"
            self.scope.bind(target.id, Binding(how, self.scope, expr=value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            values: list[ast.expr | None] = [None] * len(target.elts)
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                values = list(value.elts)
            for elt, val in zip(target.elts, values, strict=True):
                self._bind_target(elt, val)
        elif isinstance(target, ast.Starred):
            self._bind_target(target.value, None)
        elif isinstance(target, ast.Attribute) and value is not None:
            self._bind_attribute(target, value)

    def _bind_attribute(self, target: ast.Attribute, value: ast.expr) -> None:
        """Record ``self.x = value`` inside a method as an attribute of the class."""
        if not isinstance(target.value, ast.Name):
            return
        scope = self.scope
        if not isinstance(scope.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        owner = scope.parent
        if owner is None or not isinstance(owner.node, ast.ClassDef):
            return
        params = [*scope.node.args.posonlyargs, *scope.node.args.args]
        if not params or params[0].arg != target.value.id:
            return
        attrs = self.model.class_attributes.setdefault(owner.node, {})
        attrs.setdefault(target.attr, []).append(Binding("value", scope, expr=value))

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            self._bind_target(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        if node.value is not None:
            self._bind_target(node.target, node.value)
        elif isinstance(node.target, ast.Name):
            self.scope.bind(node.target.id, Binding("annotation", self.scope,
                                                    expr=node.annotation))
        elif isinstance(node.target, ast.Attribute):
            self._bind_attribute(node.target, node.annotation)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.generic_visit(node)
        self._bind_target(node.target, None)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.generic_visit(node)
        scope = self.scope
        while isinstance(scope.node, _COMPREHENSIONS) and scope.parent is not None:
            scope = scope.parent
        scope.bind(node.target.id, Binding("value", scope, expr=node.value))

    def _for(self, node: ast.For | ast.AsyncFor) -> None:
        self.generic_visit(node)
        self._bind_target(node.target, None)

    visit_For = _for
    visit_AsyncFor = _for

    def _with(self, node: ast.With | ast.AsyncWith) -> None:
        self.generic_visit(node)
        for item in node.items:
            if item.optional_vars is not None:
                self._bind_target(item.optional_vars, item.context_expr)

    visit_With = _with
    visit_AsyncWith = _with

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.generic_visit(node)
        if node.name:
            self.scope.bind(node.name, Binding("opaque", self.scope))

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.global_names.update(node.names)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.scope.bind(alias.asname, Binding("import", self.scope, qualified=alias.name))
            else:
                root = alias.name.split(".")[0]
                self.scope.bind(root, Binding("import", self.scope, qualified=root))
            self.model.imported_modules.add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self.model.resolve_relative(node.module, node.level)
        if base is None:
            return
        self.model.imported_modules.add(base)
        for alias in node.names:
            if alias.name == "*":
                continue
            qualified = f"{base}.{alias.name}" if base else alias.name
            if base:
                self.model.imported_modules.add(qualified)
            self.scope.bind(
                alias.asname or alias.name, Binding("import", self.scope, qualified=qualified)
            )


class ModuleModel:
    """Facts about one module; built once, then queried by every rule."""

    def __init__(
        self,
        tree: ast.Module,
        *,
        path: str,
        module: str = "",
        is_package: bool = False,
        project: ProjectIndex | None = None,
    ) -> None:
        self.tree = tree
        self.path = path
        self.module = module
        self.is_package = is_package
        self.project: ProjectIndex = project if project is not None else _NoProject()
        self.parents: dict[ast.AST, ast.AST] = {}
        self.nodes: list[ast.AST] = []
        """Every node of the module, in a pre-order walk (cheaper than ``ast.walk`` per rule)."""
        self.scopes: dict[ast.AST, Scope] = {}
        self.class_attributes: dict[ast.ClassDef, dict[str, list[Binding]]] = {}
        self.imported_modules: set[str] = set()
        """Imported modules, and every ``from`` import's name (``from pkg import mod`` may
        import a module)."""
        self._resolving: set[int] = set()
        _ScopeBuilder(self).visit(tree)
        self.imported_roots = frozenset(m.split(".")[0] for m in self.imported_modules if m)
        self.web_module = is_web_module(self.imported_modules, self.module)
        self._sdk_calls: list[SdkCall] | None = None
        self._qualified_calls: list[tuple[ast.Call, str, Scope]] | None = None

    # -- names -----------------------------------------------------------------------------

    def resolve_relative(self, module: str | None, level: int) -> str | None:
        if level == 0:
            return module or ""
        package = self.module.split(".") if self.module else []
        if not self.is_package:
            package = package[:-1]
        drop = level - 1
        if drop > len(package):
            return None
        base = package[: len(package) - drop] if drop else package
        parts = [*base, *(module.split(".") if module else [])]
        return ".".join(parts)

    def scope_of(self, node: ast.AST) -> Scope:
        """The innermost scope whose body contains ``node``."""
        current: ast.AST | None = self.parents.get(node)
        child: ast.AST = node
        grandchild: ast.AST | None = None
        while current is not None:
            scope = self.scopes.get(current)
            if scope is not None and not _is_header(current, child, grandchild):
                return scope
            grandchild, child = child, current
            current = self.parents.get(current)
        return self.scopes[self.tree]

    def lookup(self, name: str, scope: Scope) -> list[Binding]:
        """Bindings of ``name`` as Python resolves it from ``scope`` (class bodies are
        skipped from inside their methods)."""
        if name in scope.global_names:
            scope = scope.module()
        current: Scope | None = scope
        first = True
        while current is not None:
            if (first or not current.is_class) and name in current.bindings:
                return current.bindings[name]
            first = False
            current = current.parent
        return []

    def qualify(self, expr: ast.expr, scope: Scope, depth: int = 0) -> str | None:
        """The qualified name an expression refers to through imports (``customerio.CustomerIO``
        for ``CustomerIO`` after ``from customerio import CustomerIO``), else None."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(expr, ast.Attribute):
            base = self.qualify(expr.value, scope, depth + 1)
            return f"{base}.{expr.attr}" if base else None
        if not isinstance(expr, ast.Name):
            return None
        for binding in self.lookup(expr.id, scope):
            if binding.how == "import":
                return binding.qualified
            if binding.how == "value" and isinstance(binding.expr, (ast.Name, ast.Attribute)):
                return self.qualify(binding.expr, binding.scope, depth + 1)
        return None

    def value_of(self, expr: ast.expr, scope: Scope, depth: int = 0) -> ast.expr:
        """Follow a name bound exactly once (here, or in an audited module it is imported
        from) to the expression it was bound to; anything else is returned as is."""
        if depth > _MAX_DEPTH or not isinstance(expr, ast.Name):
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
        if depth > _MAX_DEPTH or id(expr) in self._resolving:
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
        if depth > _MAX_DEPTH:
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
        while isinstance(function.node, (ast.Lambda, *_COMPREHENSIONS)) and function.parent:
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
        if depth > _MAX_DEPTH:
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
        if depth > _MAX_DEPTH:
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
                if (isinstance(parent, _COMPREHENSIONS) and child is current.iter
                        and current is parent.generators[0]):
                    skip_comprehension = parent
            elif isinstance(current, _COMPREHENSIONS):
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
                                    *_COMPREHENSIONS)):
                current = self.parents.get(current)
                continue
            if isinstance(current, ast.Call):
                qualified = self.qualify(current.func, self.scope_of(current))
                if qualified in _AWAIT_COMBINATORS:
                    current = self.parents.get(current)
                    continue
            return False
        return False


def own_nodes(node: FunctionNode | ast.Module) -> Iterator[ast.AST]:
    """Nodes of a function's (or module's) body, not descending into nested functions,
    lambdas or classes: what runs when the body runs."""
    stack: list[ast.AST] = list(reversed(node.body))
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                ast.Lambda)):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(current))))


def _defaults(args: ast.arguments) -> dict[str, ast.expr]:
    """Each parameter's default value, by name."""
    positional = [*args.posonlyargs, *args.args]
    with_default = positional[len(positional) - len(args.defaults) :]
    defaults = {p.arg: d for p, d in zip(with_default, args.defaults, strict=True)}
    for param, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is not None:
            defaults[param.arg] = default
    return defaults


def _is_header(scope_node: ast.AST, child: ast.AST, grandchild: ast.AST | None) -> bool:
    """Decorators, defaults, annotations, bases and a comprehension's first iterable are
    evaluated in the enclosing scope."""
    if isinstance(scope_node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return child not in scope_node.body and not isinstance(child, ast.arg)
    if isinstance(scope_node, ast.Lambda):
        return child is not scope_node.body
    if isinstance(scope_node, ast.ClassDef):
        return child not in scope_node.body
    if isinstance(scope_node, _COMPREHENSIONS):
        first = scope_node.generators[0]
        return child is first and grandchild is first.iter
    return False
