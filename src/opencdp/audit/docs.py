"""Documentation generated from the rule classes.

``rules_table()`` renders the Markdown table of every code (for the README and
``docs/audit.md``); ``rules_reference()`` renders one section per rule with its bad and good
examples; ``update_markdown()`` refreshes the generated blocks of a Markdown text
(``python -m opencdp.audit.update_docs docs/audit.md README.md`` does it in place).
"""

from __future__ import annotations

from collections.abc import Callable

from .model import WEIGHTS
from .rules import all_rules

__all__ = ["rules_reference", "rules_table", "update_markdown", "weights_table"]

def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def rules_table() -> str:
    """A Markdown table of every audit code: code, name, severity, what it finds, and the
    one-line message that says what to do instead."""
    lines = [
        "| Code | Name | Severity | Finds | What to do |",
        "|---|---|---|---|---|",
    ]
    for rule in all_rules():
        lines.append(
            f"| `{rule.code}` | `{rule.name}` | {rule.severity.value} "
            f"| {_cell(rule.summary())} | {_cell(rule.message)} |"
        )
    return "\n".join(lines) + "\n"


def weights_table() -> str:
    """The score weight of each severity."""
    lines = ["| Severity | Points off the score per finding |", "|---|---|"]
    lines.extend(f"| {severity.value} | {weight} |" for severity, weight in WEIGHTS.items())
    return "\n".join(lines) + "\n"


def rules_reference() -> str:
    """One section per rule: why it matters, a bad example (the reported lines carry the
    code in a comment) and a good one."""
    sections = []
    for rule in all_rules():
        fence = rule.LANGUAGE
        parts = [
            f"### {rule.code} `{rule.name}` ({rule.severity.value})",
            "",
            rule.summary(),
            "",
        ]
        if rule.explanation():
            parts += [rule.explanation(), ""]
        parts += [f"Message: *{rule.message}*", ""]
        if rule.INVALID:
            parts += ["Bad:", "", f"```{fence}", rule.INVALID[0].rstrip("\n"), "```", ""]
        if rule.VALID:
            parts += ["Good:", "", f"```{fence}", rule.VALID[0].rstrip("\n"), "```", ""]
        sections.append("\n".join(parts))
    return "\n".join(sections)


_BLOCKS: dict[str, Callable[[], str]] = {
    "audit-codes": rules_table,
    "audit-rules": rules_reference,
    "audit-weights": weights_table,
}


def update_markdown(text: str) -> str:
    """Replace the body of every ``<!-- BEGIN name -->``/``<!-- END name -->`` block whose
    name is one of ``audit-codes``, ``audit-rules``, ``audit-weights``."""
    for name, render in _BLOCKS.items():
        begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
        start = text.find(begin)
        stop = text.find(end)
        if start == -1 or stop == -1 or stop < start:
            continue
        text = text[: start + len(begin)] + "\n" + render() + text[stop:]
    return text
