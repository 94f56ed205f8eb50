"""The rules table in docs/guards.md is generated from the rules and must be current."""

from __future__ import annotations

from pathlib import Path

from opencdp.guards import RULES, rules_table
from opencdp.guards.docs import BEGIN, END

DOCS = Path(__file__).resolve().parents[2] / "docs" / "guards.md"


def test_docs_table_is_current() -> None:
    text = DOCS.read_text(encoding="utf-8")
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert generated == "\n" + rules_table(), "run: python -m opencdp.guards docs/guards.md"


def test_table_lists_every_code_with_examples() -> None:
    table = rules_table()
    for code in RULES:
        assert f"| [{code}](#{code.lower()}) |" in table
        assert f"### {code}\n" in table
    assert table.count("Bad:\n") == len(RULES) == table.count("Good:\n")
