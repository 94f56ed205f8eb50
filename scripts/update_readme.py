"""Regenerate the README's code tables from the rule classes; ``--check`` fails when stale.

The guard and audit tables are generated from the same rule units the tests run, so the
README cannot drift from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def guard_table() -> str:
    from opencdp.guards import rules_table

    table = rules_table().split("\n\n", 1)[0].strip()
    return re.sub(r"\]\(#(ocdp\d+)\)", r"](docs/guards.md#\1)", table)


def audit_table() -> str:
    from opencdp.audit import rules_table

    return rules_table().strip()


def render(text: str) -> str:
    for name, table in (("guard-codes", guard_table()), ("audit-codes", audit_table())):
        begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{table}\n{end}{tail}"
    return text


def main() -> int:
    current = README.read_text()
    wanted = render(current)
    if "--check" in sys.argv:
        if current != wanted:
            print("README.md code tables are stale: run python scripts/update_readme.py")
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
