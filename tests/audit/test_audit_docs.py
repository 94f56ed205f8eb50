"""docs/audit.md is generated from the rule classes and must be current."""

from __future__ import annotations

from pathlib import Path

from opencdp.audit import all_rules, rules_reference, rules_table
from opencdp.audit.docs import update_markdown
from opencdp.audit.update_docs import main as update_docs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "audit.md"
REGENERATE = "python -m opencdp.audit.update_docs docs/audit.md"


def test_docs_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert update_markdown(text) == text, f"docs/audit.md is stale; run: {REGENERATE}"
    assert rules_table() in text
    assert rules_reference() in text


def test_table_has_one_row_per_code() -> None:
    rows = [line for line in rules_table().splitlines() if line.startswith("| `OCDP")]
    assert [row.split("`")[1] for row in rows] == [rule.code for rule in all_rules()]


def test_every_rule_has_a_bad_and_a_good_example_in_the_docs() -> None:
    reference = rules_reference()
    for rule in all_rules():
        assert f"### {rule.code} `{rule.name}`" in reference
        assert rule.INVALID[0].rstrip("\n") in reference
        assert rule.VALID[0].rstrip("\n") in reference


def test_update_docs_rewrites_stale_blocks_and_check_reports_them(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text("# x\n<!-- BEGIN audit-codes -->\nold\n<!-- END audit-codes -->\n")
    assert update_docs(["--check", str(stale)]) == 1
    assert "old" in stale.read_text()
    assert update_docs([str(stale)]) == 0
    assert rules_table() in stale.read_text()
    assert update_docs(["--check", str(stale)]) == 0
