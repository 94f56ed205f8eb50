"""Email templates as the audit sees them: links, comments, text, and the templates they
extend or include.

HTML is read with the standard library's ``html.parser`` (tolerant of template tags in
attributes and text); the only pattern matching is on template text for ``{% extends %}`` and
``{% include %}`` names, which no HTML parser knows about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from html.parser import HTMLParser
from pathlib import PurePosixPath

__all__ = ["TEMPLATE_SUFFIXES", "Scan", "Template", "TemplateSet"]

TEMPLATE_SUFFIXES = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".liquid", ".hbs")
_REFERENCE = re.compile(r"""\{%-?\s*(extends|include)\s+["']([^"']+)["']""")


@dataclass
class Scan:
    """What the HTML parser saw."""

    links: list[tuple[int, str]] = field(default_factory=list)
    comments: list[tuple[int, str]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    body_line: int | None = None
    first_tag_line: int | None = None


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.result = Scan()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        if self.result.first_tag_line is None:
            self.result.first_tag_line = line
        if tag == "body" and self.result.body_line is None:
            self.result.body_line = line
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self.result.links.append((line, value))

    def handle_comment(self, data: str) -> None:
        self.result.comments.append((self.getpos()[0], data))

    def handle_data(self, data: str) -> None:
        self.result.text.append(data)


@dataclass(eq=False)
class Template:
    """One template file. ``explicit``: named on the command line (so it is an email
    template whatever its path). ``relative``: the path below the directory the audit was
    pointed at, which is what name-based heuristics look at."""

    path: str
    text: str
    explicit: bool = False
    relative: str = ""

    def __post_init__(self) -> None:
        if not self.relative:
            self.relative = self.path

    @cached_property
    def scan(self) -> Scan:
        scanner = _Scanner()
        scanner.feed(self.text)
        scanner.close()
        return scanner.result

    @cached_property
    def references(self) -> list[tuple[str, str]]:
        """``(extends|include, name)`` for each template tag naming another template."""
        return [(m.group(1), m.group(2)) for m in _REFERENCE.finditer(self.text)]

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.path).parts

    @property
    def report_line(self) -> int:
        return self.scan.body_line or self.scan.first_tag_line or 1


class TemplateSet:
    """All templates of one audit run, so that ``{% extends %}`` and ``{% include %}`` can be
    followed."""

    def __init__(self, templates: Iterable[Template]) -> None:
        self.templates = list(templates)

    def resolve(self, name: str) -> Template | None:
        wanted = PurePosixPath(name).parts
        for template in self.templates:
            if template.parts[-len(wanted):] == wanted:
                return template
        return None

    def is_extended(self, template: Template) -> bool:
        """True when another template extends this one (a layout, not a message)."""
        return any(
            kind == "extends" and self.resolve(name) is template
            for other in self.templates
            if other is not template
            for kind, name in other.references
        )

    def closure(self, template: Template) -> tuple[list[Template], bool]:
        """The template with everything it extends or includes, and whether every reference
        was found (when one is missing, the audit cannot judge the message)."""
        seen: list[Template] = []
        complete = True
        stack = [template]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.append(current)
            for _, name in current.references:
                found = self.resolve(name)
                if found is None:
                    complete = False
                else:
                    stack.append(found)
        return seen, complete
