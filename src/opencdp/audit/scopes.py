"""Scopes and bindings of one Python module: which name means what, where.

The first half of the audit's semantic model (``analysis.ModuleModel`` builds on it): a
scope per module, function, lambda, class and comprehension, each name's bindings in it
(values, imports resolved to qualified names, annotations, parameters with their defaults,
function definitions), ``self`` attributes per class, and every node's parent. It knows
nothing of clients, so that what Python's scoping says and what the audit infers about
Customer.io and opencdp objects can be read, and tested, apart.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

__all__ = [
    "COMPREHENSIONS",
    "MAX_DEPTH",
    "Binding",
    "FunctionNode",
    "ModuleScopes",
    "Scope",
    "ScopeNode",
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
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
MAX_DEPTH = 12
"""How far a name is followed through other names before the analysis gives up."""


BindingHow: TypeAlias = Literal[
    "value", "import", "annotation", "parameter", "function", "opaque"
]


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

    def __init__(self, model: ModuleScopes) -> None:
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
        while isinstance(scope.node, COMPREHENSIONS) and scope.parent is not None:
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


class ModuleScopes:
    """One module's scopes, bindings and parent links, built once in a single walk."""

    def __init__(self, tree: ast.Module, *, path: str, module: str = "",
                 is_package: bool = False) -> None:
        self.tree = tree
        self.path = path
        self.module = module
        self.is_package = is_package
        self.parents: dict[ast.AST, ast.AST] = {}
        self.nodes: list[ast.AST] = []
        """Every node of the module, in a pre-order walk (cheaper than ``ast.walk`` per rule)."""
        self.scopes: dict[ast.AST, Scope] = {}
        self.class_attributes: dict[ast.ClassDef, dict[str, list[Binding]]] = {}
        self.imported_modules: set[str] = set()
        """Imported modules, and every ``from`` import's name (``from pkg import mod`` may
        import a module)."""
        _ScopeBuilder(self).visit(tree)

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
        if depth > MAX_DEPTH:
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
    if isinstance(scope_node, COMPREHENSIONS):
        first = scope_node.generators[0]
        return child is first and grandchild is first.iter
    return False
