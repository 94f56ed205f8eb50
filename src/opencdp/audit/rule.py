"""The shape of an audit rule.

One rule per module, as in Fixit: a class with a stable ``code``, a ``name``, a ``severity``,
a one-line ``message`` that says what to do instead, a docstring that says why, and ``VALID``
and ``INVALID`` examples. One generic test runs every rule's examples and the docs are
generated from the same classes, so the examples cannot drift from the behaviour.

Examples mark the lines that must be reported with a trailing comment naming the code
(``# OCDP201`` in Python, ``<!-- OCDP210 -->`` in templates), like flake8-bugbear's test files.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from .model import Severity

if TYPE_CHECKING:
    from .analysis import ModuleModel
    from .templates import Template, TemplateSet

__all__ = ["Hit", "PythonRule", "Rule", "TemplateRule"]


class Hit(NamedTuple):
    """A rule's report: 1-based line and column, and an optional specific message."""

    line: int
    col: int
    message: str | None = None


class Rule:
    """Base of every rule; subclasses set the class attributes below."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    message: ClassVar[str]
    VALID: ClassVar[tuple[str, ...]]
    INVALID: ClassVar[tuple[str, ...]]
    EXAMPLE_PATH: ClassVar[str] = "example.py"
    LANGUAGE: ClassVar[str] = "python"

    @classmethod
    def _paragraphs(cls) -> list[str]:
        lines = [line.strip() for line in (cls.__doc__ or "").strip().splitlines()]
        paragraphs: list[list[str]] = [[]]
        for line in lines:
            if line:
                paragraphs[-1].append(line)
            elif paragraphs[-1]:
                paragraphs.append([])
        return [" ".join(p) for p in paragraphs if p]

    @classmethod
    def summary(cls) -> str:
        """The docstring's first paragraph: what the rule finds."""
        paragraphs = cls._paragraphs()
        return paragraphs[0] if paragraphs else ""

    @classmethod
    def explanation(cls) -> str:
        """The rest of the docstring: why it matters and what is left out."""
        return "\n\n".join(cls._paragraphs()[1:])


class PythonRule(Rule):
    """A rule over a Python module's semantic model."""

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        raise NotImplementedError

    @staticmethod
    def hit(node: ast.AST, message: str | None = None) -> Hit:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0) + 1
        return Hit(line, col, message)


class TemplateRule(Rule):
    """A rule over an email template."""

    EXAMPLE_PATH: ClassVar[str] = "templates/emails/example.html"
    LANGUAGE: ClassVar[str] = "html"

    def check_template(self, template: Template, templates: TemplateSet) -> Iterator[Hit]:
        raise NotImplementedError
