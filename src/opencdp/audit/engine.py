"""Find the files, build the models, run the rules, apply ``# noqa``.

All Python files of a run are parsed before any rule runs, so that a client built in
``clients.py`` is recognised when ``views.py`` imports it. Comments are read with
``tokenize`` (the AST drops them) for ``# noqa`` and ``# noqa: OCDP201`` suppressions.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .analysis import ModuleModel, module_name_for
from .model import AuditResult, Finding
from .rule import Hit, PythonRule, Rule, TemplateRule
from .rules import ParseFailure, all_rules
from .templates import TEMPLATE_SUFFIXES, Template, TemplateSet

__all__ = ["audit_paths", "audit_source", "discover"]

PYTHON_SUFFIXES = (".py", ".pyi")
SKIPPED_DIRS = frozenset(
    {"node_modules", "__pycache__", "site-packages", "venv", "build", "dist", "htmlcov"}
)


@dataclass(frozen=True, slots=True)
class Source:
    path: str
    data: bytes
    explicit: bool
    module: str = ""
    is_package: bool = False
    file: Path | None = None


def _package_parts(path: Path) -> tuple[str, ...]:
    """The file name preceded by every enclosing directory that is a package."""
    parts = [path.name]
    parent = path.resolve().parent
    while (parent / "__init__.py").is_file() and parent.name:
        parts.insert(0, parent.name)
        parent = parent.parent
    return tuple(parts)


def _skip_dir(parent: str, name: str) -> bool:
    if name.startswith(".") or name in SKIPPED_DIRS:
        return True
    return os.path.exists(os.path.join(parent, name, "pyvenv.cfg"))


def discover(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[Path, Path | None]]:
    """Python files and templates under ``paths``, each with the directory it was found
    under (None when the file was named explicitly). Hidden directories, virtualenvs and
    build output are skipped."""
    seen: set[Path] = set()
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            if root not in seen:
                seen.add(root)
                yield root, None
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not _skip_dir(dirpath, d))
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if path.suffix in (*PYTHON_SUFFIXES, *TEMPLATE_SUFFIXES) and path not in seen:
                    seen.add(path)
                    yield path, root


class Project:
    """The modules of a run by dotted name, for lookups across imports.

    A module imported by an audited file but not itself audited (a pre-commit run passes only
    the changed files) is read from disk on first lookup, under the package roots of the
    audited files, so that ``from .clients import cio`` still resolves. Such modules inform
    the analysis but are not reported on.
    """

    def __init__(self) -> None:
        self.modules: dict[str, ModuleModel] = {}
        self.roots: list[Path] = []
        self._missing: set[str] = set()

    def add(self, model: ModuleModel, file: Path | None = None) -> None:
        if not model.module:
            return
        self.modules.setdefault(model.module, model)
        if file is not None:
            depth = model.module.count(".") + (1 if model.is_package else 0)
            root = file.resolve().parents[depth]
            if root not in self.roots:
                self.roots.append(root)

    def find(self, qualified: str) -> tuple[ModuleModel, str] | None:
        module, _, name = qualified.rpartition(".")
        if not module:
            return None
        model = self.modules.get(module) or self._load(module)
        if model is None:
            matches = [
                m for key, m in self.modules.items()
                if key.endswith("." + module) or module.endswith("." + key)
            ]
            if len(matches) != 1:
                return None
            model = matches[0]
        return model, name

    def has_module(self, module: str) -> bool:
        """True when ``module`` is one of the project's own (audited or on disk)."""
        return module in self.modules or self._load(module) is not None

    def _load(self, module: str) -> ModuleModel | None:
        if module in self._missing:
            return None
        parts = module.split(".")
        for root in self.roots:
            base = root.joinpath(*parts)
            for file, is_package in ((base.with_suffix(".py"), False),
                                     (base / "__init__.py", True)):
                if not file.is_file():
                    continue
                try:
                    tree = ast.parse(file.read_bytes(), filename=str(file))
                except (SyntaxError, ValueError, OSError):
                    continue
                model = ModuleModel(
                    tree, path=file.as_posix(), module=module, is_package=is_package,
                    project=self,
                )
                self.modules[module] = model
                return model
        self._missing.add(module)
        return None


def _noqa(data: bytes) -> dict[int, frozenset[str] | None]:
    """Line -> suppressed codes (None: every code) from ``# noqa`` comments."""
    result: dict[int, frozenset[str] | None] = {}
    if b"noqa" not in data.lower():
        return result
    try:
        for token in tokenize.tokenize(io.BytesIO(data).readline):
            if token.type != tokenize.COMMENT:
                continue
            text = token.string.lstrip("#").strip()
            head, sep, tail = text.partition(":")
            if head.strip().lower() != "noqa":
                continue
            if not sep:
                result[token.start[0]] = None
                continue
            codes = frozenset(c.strip().upper() for c in tail.replace(",", " ").split())
            result[token.start[0]] = codes
    except (tokenize.TokenError, SyntaxError):
        pass
    return result


def _suppressed(code: str, line: int, noqa: dict[int, frozenset[str] | None]) -> bool:
    if line not in noqa:
        return False
    codes = noqa[line]
    return codes is None or code in codes


def _wanted(code: str, select: Sequence[str] | None, ignore: Sequence[str] | None) -> bool:
    if select and not any(code.startswith(prefix.upper()) for prefix in select):
        return False
    return not (ignore and any(code.startswith(prefix.upper()) for prefix in ignore))


def _finding(rule: type[Rule], path: str, hit: Hit) -> Finding:
    return Finding(path, hit.line, hit.col, rule.code, hit.message or rule.message, rule.severity)


def _run(
    sources: Sequence[Source],
    templates: Sequence[Template],
    select: Sequence[str] | None,
    ignore: Sequence[str] | None,
) -> AuditResult:
    rules = [r for r in all_rules() if _wanted(r.code, select, ignore)]
    python_rules = [r() for r in rules if issubclass(r, PythonRule)]
    template_rules = [r() for r in rules if issubclass(r, TemplateRule)]
    findings: list[Finding] = []
    project = Project()
    parsed: list[tuple[Source, ModuleModel]] = []
    report_failures = _wanted(ParseFailure.code, select, ignore)
    for source in sources:
        try:
            tree = ast.parse(source.data, filename=source.path)
            model = ModuleModel(
                tree,
                path=source.path,
                module=source.module,
                is_package=source.is_package,
                project=project,
            )
        except (SyntaxError, ValueError, RecursionError) as exc:
            if report_failures:
                findings.append(_finding(ParseFailure, source.path, ParseFailure.hit_for(exc)))
            continue
        project.add(model, source.file)
        parsed.append((source, model))
    for source, model in parsed:
        noqa = _noqa(source.data)
        file_findings: list[Finding] = []
        try:
            for python_rule in python_rules:
                for hit in python_rule.check(model):
                    if not _suppressed(python_rule.code, hit.line, noqa):
                        file_findings.append(_finding(type(python_rule), source.path, hit))
        except RecursionError as exc:
            file_findings = []
            if report_failures:
                file_findings.append(
                    _finding(ParseFailure, source.path, ParseFailure.hit_for(exc))
                )
        findings.extend(file_findings)
    template_set = TemplateSet(templates)
    for template in templates:
        for template_rule in template_rules:
            for hit in template_rule.check_template(template, template_set):
                findings.append(_finding(type(template_rule), template.path, hit))
    unique = sorted(set(findings))
    return AuditResult(tuple(unique), files=len(sources) + len(templates))


def audit_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
) -> AuditResult:
    """Audit files and directory trees. ``select``/``ignore`` take code prefixes."""
    sources: list[Source] = []
    templates: list[Template] = []
    for path, root in discover(paths):
        display = path.as_posix()
        explicit = root is None
        if path.suffix in PYTHON_SUFFIXES:
            parts = _package_parts(path)
            sources.append(
                Source(
                    display,
                    path.read_bytes(),
                    explicit,
                    module=module_name_for(parts),
                    is_package=path.stem == "__init__",
                    file=path,
                )
            )
        elif path.suffix in TEMPLATE_SUFFIXES:
            text = path.read_bytes().decode("utf-8", errors="replace")
            relative = display
            if root is not None:
                relative = (Path(root.resolve().name) / path.relative_to(root)).as_posix()
            templates.append(Template(display, text, explicit=explicit, relative=relative))
    return _run(sources, templates, select, ignore)


def audit_source(
    source: str | bytes,
    path: str = "example.py",
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
) -> AuditResult:
    """Audit one in-memory file; ``path`` decides whether it is Python or a template."""
    data = source.encode() if isinstance(source, str) else source
    if path.endswith(TEMPLATE_SUFFIXES):
        template = Template(path, data.decode("utf-8", errors="replace"), explicit=True)
        return _run([], [template], select, ignore)
    module = module_name_for(tuple(Path(path).parts))
    return _run([Source(path, data, True, module=module)], [], select, ignore)
