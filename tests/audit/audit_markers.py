"""Expected findings written into example files, flake8-bugbear style.

A Python line that must be reported ends with ``# OCDP201`` (several codes comma-separated,
a code repeated when it is reported twice on the line); a template line carries
``<!-- OCDP210 -->``.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

from opencdp.audit import AuditResult

MARKER = re.compile(r"\s*(OCDP\d{3}(?:\s*,\s*OCDP\d{3})*)\s*")
TEMPLATE_SUFFIXES = (".html", ".htm")


def _codes(comment: str) -> list[str]:
    match = MARKER.fullmatch(comment)
    if match is None:
        return []
    return [code.strip() for code in match.group(1).split(",")]


class _Comments(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[int, str]] = []

    def handle_comment(self, data: str) -> None:
        self.found.append((self.getpos()[0], data))


def expected(source: str, path: str) -> Counter[tuple[int, str]]:
    """``(line, code)`` pairs marked in one file's text."""
    marks: Counter[tuple[int, str]] = Counter()
    if path.endswith(TEMPLATE_SUFFIXES):
        parser = _Comments()
        parser.feed(source)
        for line, text in parser.found:
            marks.update((line, code) for code in _codes(text))
        return marks
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            marks.update((token.start[0], code) for code in _codes(token.string.lstrip("#")))
    return marks


def expected_tree(root: Path) -> Counter[tuple[str, int, str]]:
    """``(path, line, code)`` marked in every Python file and template under ``root``."""
    marks: Counter[tuple[str, int, str]] = Counter()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", *TEMPLATE_SUFFIXES):
            text = path.read_text(encoding="utf-8")
            for (line, code), count in expected(text, path.name).items():
                marks[(path.as_posix(), line, code)] += count
    return marks


def found(result: AuditResult) -> Counter[tuple[int, str]]:
    return Counter((f.line, f.code) for f in result.findings)


def found_tree(result: AuditResult) -> Counter[tuple[str, int, str]]:
    return Counter((f.path, f.line, f.code) for f in result.findings)
